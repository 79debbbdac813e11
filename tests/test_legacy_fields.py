"""Issue 13 item 14: `legacy_fields` (per app, or `serve --legacy-fields` for all apps) adds the older
API docs' risk_score, client_ip and offline at the top of validate's data, beside captcha_args."""

from __future__ import annotations

from click.testing import CliRunner

from emulator.app import create_app
from emulator.cli import main
from emulator.runtime import build_runtime
from tests.conftest import DEMO

LEGACY = {"app_key": "legacy_app", "app_secret": "legacy_secret", "legacy_fields": True, "risk_score": 42}
LEGACY_HEADERS = {"X-App-Key": "legacy_app", "X-App-Secret": "legacy_secret"}


def test_an_app_with_legacy_fields_gets_them_beside_captcha_args(client, mint, validate):
    assert client.post("/_emulator/apps", json=LEGACY).status_code == 201
    data = validate(mint(app_key="legacy_app", client_ip="10.0.0.7"), headers=LEGACY_HEADERS)["data"]
    assert data["valid"] is True
    assert (data["risk_score"], data["client_ip"], data["offline"]) == (42, "10.0.0.7", False)
    assert data["captcha_args"]["risk_score"] == 42 and data["captcha_args"]["user_ip"] == "10.0.0.7"


def test_an_offline_token_says_so_on_the_backup_api(client, mint, validate):
    client.post("/_emulator/apps", json=LEGACY)
    token = mint(app_key="legacy_app", kind="offline")
    assert validate(token, headers=LEGACY_HEADERS, path="/api/validate")["data"]["offline"] is True


def test_other_apps_keep_the_current_shape(mint, validate):
    data = validate(mint())["data"]
    assert "risk_score" not in data and "client_ip" not in data and "offline" not in data


def test_the_serve_flag_adds_them_for_every_app(settings, fake_time):
    rt = build_runtime(settings.replace(legacy_fields=True), real_time=fake_time)
    client = create_app(runtime=rt).test_client()
    token = client.post("/_emulator/pass-tokens", json={"action": "login"}).json["pass_token"]
    data = client.post("/v1/validate", json={"pass_token": token}, headers=DEMO).json["data"]
    assert (data["risk_score"], data["client_ip"], data["offline"]) == (10, None, False)
    rt.store.close()


def test_serve_has_the_flag_with_its_env_twin():
    out = CliRunner().invoke(main, ["serve", "--help"]).output
    assert "--legacy-fields" in out

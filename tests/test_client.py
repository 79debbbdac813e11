"""EmulatorClient against a real HTTP server (the in-process thread server): every method of
docs/compatibility.md §14."""

from __future__ import annotations

import threading

import pytest
import requests

from emulator.app import create_app
from emulator.client import ControlPlaneError, EmulatorClient
from emulator.server import ThreadServer
from emulator.settings import Settings
from tests.support.apps import DEMO


def serve(**settings):
    app = create_app(Settings(store="memory://", secret="client-test", quiet=True, **settings))
    return ThreadServer(app).start()


@pytest.fixture(scope="module")
def server():
    srv = serve()
    yield srv
    srv.stop()


@pytest.fixture
def emu(server):
    client = EmulatorClient(server.url)
    client.reset()
    return client


def validate(url: str, token: str, headers=DEMO) -> dict:
    return requests.post(url + "/v1/validate", json={"pass_token": token}, headers=headers, timeout=10).json()


def test_health_apps_and_reset(emu):
    assert emu.health()["status"] == "ok"
    assert {a["app_key"] for a in emu.apps()} >= {"demo_app", "strict_ip_app"}
    emu.mint()
    emu.mint(app_key="auto_pass_app")
    assert emu.reset(app_key="demo_app") == {"reset": True, "app_key": "demo_app"}
    assert [e["app_key"] for e in emu.requests()] == ["auto_pass_app"]
    emu.reset()
    assert emu.requests() == []


def test_mint_validate_explain_and_journal(emu):
    details = emu.mint_details(action="signup", client_ip="10.1.2.3")
    assert details["challenge_id"].startswith("ch_") and details["expires_in"] == 300
    token = details["pass_token"]
    assert validate(emu.url, token)["data"]["valid"] is True
    assert validate(emu.url, token)["data"]["error"] == "token_consumed"
    x = emu.explain(token)
    assert x["state"] == "consumed" and x["claims"]["action"] == "signup"
    assert [h["outcome"] for h in x["history"]] == ["minted", "valid", "rejected"]
    assert [e["code"] for e in emu.requests(endpoint="validate", token=token)] == [None, "token_consumed"]
    assert emu.requests(outcome="rejected", limit=1)[0]["reason"].startswith("consumed at ")


def test_explain_quotes_any_string_into_the_path(emu):
    assert emu.explain("not/a token?&#")["state"] == "forged"


def test_wait_for_request_returns_the_match_or_none(emu):
    token = emu.mint()
    after = max(e["id"] for e in emu.requests())
    threading.Thread(target=validate, args=(emu.url, token)).start()
    entry = emu.wait_for_request(endpoint="validate", token=token, after=after, timeout=20)
    assert entry is not None and entry["outcome"] == "valid"
    assert emu.wait_for_request(endpoint="issue", timeout=0.2) is None


def test_clock_methods_move_time_for_tokens(emu):
    token = emu.mint(ttl=60)
    assert emu.clock()["offset"] == 0
    assert emu.set_clock(30)["offset"] == 30
    assert emu.advance_clock(31)["offset"] == 61
    assert validate(emu.url, token)["data"]["error"] == "token_expired"


def test_errors_raise_with_status_code_and_message(emu):
    with pytest.raises(ControlPlaneError) as err:
        emu.mint(app_key="no_such_app")
    assert (err.value.status, err.value.error) == (404, "unknown_app")
    assert "no_such_app" in err.value.message
    with pytest.raises(ControlPlaneError) as err:
        emu.requests(colour="red")
    assert err.value.status == 400 and "unknown filter" in err.value.message
    with pytest.raises(ControlPlaneError) as err:
        emu.advance_clock(float("inf"))
    assert err.value.status == 400


def test_admin_token_is_sent_as_bearer():
    srv = serve(admin_token="s3cret")
    try:
        with pytest.raises(ControlPlaneError) as err:
            EmulatorClient(srv.url).apps()
        assert err.value.status == 401
        with pytest.raises(ControlPlaneError):
            EmulatorClient(srv.url, admin_token="wrong").health()
        authorised = EmulatorClient(srv.url, admin_token="s3cret")
        assert authorised.health()["status"] == "ok"
        assert validate(srv.url, authorised.mint())["data"]["valid"] is True
    finally:
        srv.stop()


def test_profile_methods_switch_the_fault_profile(emu):
    inline = {"name": "client-test", "rules": [
        {"name": "expire-all", "match": {"endpoint": "validate"}, "effect": {"token_result": "token_expired"}}]}
    try:
        assert emu.use_profile(inline)["name"] == "client-test"
        assert emu.profile()["active"] is True
        answer = requests.post(emu.url + "/v1/validate", json={"pass_token": emu.mint()}, headers=DEMO, timeout=10)
        assert answer.json()["data"]["error"] == "token_expired"
        assert answer.headers["X-Captchala-Emulator-Fault"] == "client-test/expire-all"
        assert emu.requests(endpoint="validate")[-1]["fault"] == "client-test/expire-all"
    finally:
        assert emu.clear_profile()["active"] is False
    with pytest.raises(ControlPlaneError) as err:
        emu.use_profile("no-such-profile")
    assert (err.value.status, err.value.error) == (404, "unknown_profile")
    assert emu.profile()["active"] is False


def test_an_unreachable_emulator_raises_oserror():
    with pytest.raises(OSError):
        EmulatorClient("http://127.0.0.1:9", timeout=2).health()


def test_a_local_profile_file_is_read_by_the_client_and_sent_inline(emu, tmp_path):
    path = tmp_path / "local-chaos.yaml"
    path.write_text("rules: [{name: slowish, effect: {latency_ms: 1}}]\n")
    try:
        assert emu.use_profile(str(path))["name"] == "local-chaos"
    finally:
        emu.clear_profile()

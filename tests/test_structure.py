"""The shape of the house (issue 14, items 1 and 2): one exception tree, one error pipeline per
surface, an explicit request path. Checked on the source and through the app."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import emulator
from emulator.errors import CaptchalaEmulatorError, ControlCode, ErrorCode

PACKAGE = Path(emulator.__file__).parent
SHIPPED = [m.name for m in pkgutil.walk_packages([str(PACKAGE)], "emulator.")
           if not m.name.startswith("emulator.bench") and m.name not in ("emulator.__main__", "emulator.pytest_plugin")]


def source(relative: str) -> str:
    return (PACKAGE / relative).read_text(encoding="utf-8")


def web_sources() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in (PACKAGE / "web").glob("*.py")}


@pytest.mark.parametrize("module", SHIPPED)
def test_every_exception_the_package_defines_has_one_root(module):
    mod = importlib.import_module(module)
    for name, cls in vars(mod).items():
        if inspect.isclass(cls) and issubclass(cls, BaseException) and cls.__module__ == module:
            assert issubclass(cls, CaptchalaEmulatorError), f"{module}.{name} is outside the exception tree"


def test_profile_errors_live_in_the_tree_and_keep_their_old_import_paths():
    from emulator.errors import ConfigError, ProfileError, UnknownProfile
    from emulator.faults import loader, profile, reader

    assert issubclass(UnknownProfile, ProfileError) and issubclass(ProfileError, ConfigError)
    assert profile.ProfileError is reader.ProfileError is ProfileError and loader.UnknownProfile is UnknownProfile


def test_errors_become_responses_in_one_place_per_surface():
    sources = {"app.py": source("app.py"), **web_sources()}
    handlers = [name for name, text in sources.items() if "errorhandler" in text]
    assert handlers == ["app.py"], handlers
    builders = [name for name, text in sources.items() if re.search(r"jsonify\(\{\s*\"error\"", text)]
    assert builders == ["answers.py"], builders
    envelopes = [name for name, text in sources.items() if re.search(r"[\"']msg[\"']\s*:", text)]
    assert envelopes == ["envelope.py"], envelopes
    unavailable = [name for name, text in sources.items() if re.search(r"Error\(ErrorCode\.SERVICE_UNAVAILABLE", text)]
    assert unavailable == ["answers.py"], unavailable  # StoreUnavailable -> service_unavailable, written once


def test_every_control_plane_error_code_is_an_enum_member(client, tmp_path):
    known = {c.value for c in ControlCode} | {c.value for c in ErrorCode}
    answers = [client.post("/_emulator/reset?app_key=nope"),
               client.post("/_emulator/pass-tokens", json={"app_key": "x"}),
               client.put("/_emulator/profile", json={"name": "no-such"}), client.put("/_emulator/profile", json={}),
               client.get("/_emulator/requests?after=x"), client.get("/_emulator/nope"),
               client.delete("/_emulator/clock"),
               client.get("/_emulator/health", headers={"Host": "evil.example"}),
               client.post("/_emulator/reset", headers={"Origin": "http://evil.example"})]
    for response in answers:
        assert 400 <= response.status_code < 500 and response.json["error"] in known, response.json


def test_fault_instructions_do_not_travel_through_flask_g():
    for name, text in web_sources().items():
        assert not re.search(r"(?<![\w.])g\.\w|from flask import [^\n]*\bg\b", text), name


def test_request_facts_and_body_peeking_live_in_context():
    for name, text in web_sources().items():
        if name != "context.py":
            assert not re.search(r"request\.(get_json|get_data|form|json|stream)", text), name
    assert "def request_facts" in source("web/context.py") and "def request_facts" not in source("web/faults.py")


def test_no_blueprint_gets_routes_as_an_import_side_effect():
    for name, text in web_sources().items():
        assert not re.search(r"from \.\w+ import [^\n]*\bbp\b", text), name
    from emulator.app import BLUEPRINTS
    from emulator.web import control_profile, control_state

    assert control_state.bp in BLUEPRINTS and control_profile.bp in BLUEPRINTS


def test_a_mint_is_journaled_through_the_same_path_as_a_request(client, mint):
    mint()
    client.post("/v1/validate", json={}, headers={"X-App-Key": "demo_app", "X-App-Secret": "demo_secret"})
    minted, validated = client.get("/_emulator/requests").json["requests"][-2:]
    assert minted["endpoint"] == "mint" and minted["outcome"] == "minted"
    assert set(validated) - {"code", "client_ip", "keep_token"} <= set(minted)
    assert minted["request_key"] and minted["duration_ms"] > 0


def test_a_mint_with_the_store_down_is_a_503_and_no_token(client, runtime, monkeypatch):
    from emulator.errors import StoreUnavailable

    def down(*_args, **_kwargs):
        raise StoreUnavailable("store test: down")

    monkeypatch.setattr(runtime.clock, "now", down)
    response = client.post("/_emulator/pass-tokens", json={"app_key": "demo_app"})
    assert response.status_code == 503 and response.json["error"] == "service_unavailable"

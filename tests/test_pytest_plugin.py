"""The pytest plugin, used the way a user would: in a fresh temporary project (pytester)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from emulator.app import create_app
from emulator.client import EmulatorClient
from emulator.server import ThreadServer
from emulator.settings import Settings

pytest_plugins = ["pytester"]

NO_SLEEP_CONFTEST = """
import time
import pytest

@pytest.fixture(autouse=True)
def forbid_sleeping(monkeypatch):
    def no_sleep(seconds):
        raise AssertionError(f"time.sleep({seconds}) called: tests must not wait for time to pass")
    monkeypatch.setattr(time, "sleep", no_sleep)
"""

EXPIRY_TESTS = """
import requests

SEEN = {}


def test_mint_validate_then_expire_with_the_virtual_clock(captchala_emulator):
    emu = captchala_emulator
    SEEN["url"] = emu.url
    token = emu.mint(action="login", ttl=60)
    headers = {"X-App-Key": emu.app_key, "X-App-Secret": emu.app_secret}
    ok = requests.post(emu.url + "/v1/validate", json={"pass_token": token, "keep_token": True},
                       headers=headers, timeout=10).json()
    assert ok["data"]["valid"] is True and ok["data"]["action"] == "login"
    emu.advance_clock(61)
    late = requests.post(emu.url + "/v1/validate", json={"pass_token": token}, headers=headers, timeout=10).json()
    assert late["data"] == {"valid": False, "error": "token_expired"}
    assert emu.explain(token)["state"] == "expired"
    assert [e["code"] for e in emu.requests(endpoint="validate")] == [None, "token_expired"]


def test_each_test_starts_from_a_reset_emulator_in_the_same_session(captchala_emulator):
    assert captchala_emulator.url == SEEN["url"]
    assert captchala_emulator.requests() == []
    assert captchala_emulator.client.clock()["offset"] == 0


def test_the_handle_describes_where_things_are(captchala_emulator):
    emu = captchala_emulator
    assert emu.loader_url == emu.url + "/captchala-loader.js"
    assert (emu.app_key, emu.app_secret) == ("demo_app", "demo_secret")
    assert emu.headers == {"X-App-Key": "demo_app", "X-App-Secret": "demo_secret"}
    waited = emu.wait_for_request(endpoint="mint", timeout=0)
    assert waited is None


def test_use_profile_changes_answers_for_this_test(captchala_emulator):
    emu = captchala_emulator
    emu.use_profile({"name": "all-consumed", "rules": [
        {"name": "replay", "match": {"endpoint": "validate"}, "effect": {"token_result": "token_consumed"}}]})
    body = requests.post(emu.validate_url, json={"pass_token": emu.mint()}, headers=emu.headers, timeout=10).json()
    assert body["data"]["error"] == "token_consumed"
    assert emu.requests(endpoint="validate")[0]["fault"] == "all-consumed/replay"


def test_a_profile_set_by_the_previous_test_is_gone(captchala_emulator):
    assert captchala_emulator.client.profile()["active"] is False
"""


def test_a_fresh_project_mints_validates_and_expires_a_token_without_sleeping(pytester):
    pytester.makeconftest(NO_SLEEP_CONFTEST)
    pytester.makepyfile(test_expiry=EXPIRY_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)


WORKER_TESTS = """
import json, os
import pytest

@pytest.mark.parametrize("n", range(6))
def test_record_which_emulator_served_me(captchala_emulator, n, tmp_path_factory):
    token = captchala_emulator.mint()
    assert captchala_emulator.explain(token)["state"] == "valid"
    assert len(captchala_emulator.requests()) == 1, "another test's requests leaked into mine"
    out = os.environ["RESULTS_DIR"]
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(os.path.join(out, f"{worker}-{n}.json"), "w") as fh:
        json.dump({"worker": worker, "url": captchala_emulator.url}, fh)
"""


def test_under_xdist_each_worker_gets_its_own_emulator(pytester, tmp_path, monkeypatch):
    results = tmp_path / "results"
    results.mkdir()
    monkeypatch.setenv("RESULTS_DIR", str(results))
    pytester.makepyfile(test_workers=WORKER_TESTS)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)
    records = [json.loads(p.read_text()) for p in results.iterdir()]
    urls_by_worker: dict[str, set[str]] = {}
    for record in records:
        urls_by_worker.setdefault(record["worker"], set()).add(record["url"])
    assert set(urls_by_worker) == {"gw0", "gw1"}
    assert all(len(urls) == 1 for urls in urls_by_worker.values()), "one emulator per worker for the session"
    assert urls_by_worker["gw0"] != urls_by_worker["gw1"]


EXTERNAL_TESTS = """
import os

def test_uses_the_given_emulator(captchala_emulator):
    assert captchala_emulator.url == os.environ["EXPECTED_URL"]
    assert captchala_emulator.explain(captchala_emulator.mint())["state"] == "valid"
"""


@pytest.fixture
def external():
    server = ThreadServer(create_app(Settings(store="memory://", secret="x", quiet=True, admin_token="adm"))).start()
    yield server
    server.stop()


def test_an_external_emulator_by_option_or_environment(pytester, external, monkeypatch):
    monkeypatch.setenv("EXPECTED_URL", external.url)
    pytester.makepyfile(test_external=EXTERNAL_TESTS)
    by_option = pytester.runpytest_subprocess("-p", "no:randomly", f"--captchala-emulator-url={external.url}",
                                              "--captchala-emulator-admin-token=adm")
    by_option.assert_outcomes(passed=1)
    monkeypatch.setenv("CAPTCHALA_EMULATOR_URL", external.url)
    monkeypatch.setenv("CAPTCHALA_EMULATOR_ADMIN_TOKEN", "adm")
    pytester.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=1)


def test_an_unreachable_external_emulator_is_a_clear_error(pytester, monkeypatch):
    monkeypatch.delenv("CAPTCHALA_EMULATOR_URL", raising=False)
    pytester.makepyfile(test_external="def test_x(captchala_emulator):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--captchala-emulator-url=http://127.0.0.1:9")
    assert result.ret != 0
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*captchala emulator at http://127.0.0.1:9 is not reachable*"])


def test_the_plugin_registers_its_options_and_fixtures(pytester):
    result = pytester.runpytest_subprocess("--fixtures", "-p", "no:randomly")
    result.stdout.fnmatch_lines(["captchala_emulator -- *", "*reset before the test*"])
    help_text = pytester.runpytest_subprocess("--help")
    help_text.stdout.fnmatch_lines(["*--captchala-emulator-url=URL*"])


def test_the_readme_example_runs_as_written(pytester):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("<!-- section:testing -->", 1)[1].split("<!-- /section:testing -->", 1)[0]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    pytester.makepyfile(test_readme_example=example)
    pytester.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=2)


def test_settings_can_be_overridden_by_a_fixture(pytester):
    pytester.makefile(".yaml", apps="- {app_key: shop_app, app_secret: shop_secret, pass_token_ttl: 30}\n")
    pytester.makeconftest("""
import pytest

@pytest.fixture(scope="session")
def captchala_emulator_settings():
    return {"apps": "apps.yaml"}
""")
    pytester.makepyfile(test_apps="""
def test_the_extra_app_is_there(captchala_emulator):
    assert "shop_app" in {a["app_key"] for a in captchala_emulator.client.apps()}
    token = captchala_emulator.mint(app_key="shop_app")
    claims = captchala_emulator.explain(token)["claims"]
    assert claims["expires_at"] - claims["issued_at"] == 30
""")
    pytester.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=1)


def test_an_unknown_settings_key_fails_with_the_valid_keys(pytester):
    pytester.makeconftest("""
import pytest

@pytest.fixture(scope="session")
def captchala_emulator_settings():
    return {"app": "apps.yaml"}
""")
    pytester.makepyfile(test_x="def test_x(captchala_emulator):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*captchala_emulator_settings: unknown key 'app' (valid keys: *apps*journal_size*)*"])
    assert "TypeError" not in result.stdout.str()


def test_the_readme_lists_every_settings_key():
    from dataclasses import fields

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("<!-- section:testing -->", 1)[1].split("<!-- /section:testing -->", 1)[0]
    listed = section.split("captchala_emulator_settings` keys", 1)[1].split("\n\n", 1)[0]
    assert [f.name for f in fields(Settings) if f"`{f.name}`" not in listed] == []


SHARED_TESTS = """
import os
import pytest
import requests


@pytest.mark.parametrize("n", range(8))
def test_my_state_is_mine(captchala_emulator, n):
    emu = captchala_emulator
    assert emu.app_key != "demo_app", "an external emulator: the session works in its own app"
    token = emu.mint(action="login")
    ok = requests.post(emu.validate_url, json={"pass_token": token}, headers=emu.headers, timeout=10).json()
    assert ok["data"]["valid"] is True
    assert [e["outcome"] for e in emu.requests()] == ["minted", "valid"], "another session's reset or requests leaked"
    with open(os.environ["KEYS_FILE"], "a") as fh:
        fh.write(emu.app_key + "\\n")


def test_handles_for_a_built_in_app_and_a_new_app(captchala_emulator):
    strict = captchala_emulator.app("strict_ip_app")
    assert strict.app_key != "strict_ip_app" and strict is captchala_emulator.app("strict_ip_app")
    token = strict.mint(client_ip="10.9.9.9")
    answer = requests.post(strict.validate_url, json={"pass_token": token, "client_ip": "10.1.1.1"},
                           headers=strict.headers, timeout=10).json()
    assert answer["data"] == {"valid": False, "error": "binding_mismatch"}
    short = captchala_emulator.new_app(pass_token_ttl=5)
    claims = short.explain(short.mint())["claims"]
    assert claims["expires_at"] - claims["issued_at"] == 5
"""


def _session(pytester, name: str, url: str, keys_file: Path):
    project = pytester.mkdir(name)
    (project / "test_shared.py").write_text(SHARED_TESTS)
    env = {**os.environ, "KEYS_FILE": str(keys_file), "CAPTCHALA_EMULATOR_URL": url}
    return subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"],
                            cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_two_sessions_share_one_external_emulator_without_touching_others_state(pytester, tmp_path):
    server = ThreadServer(create_app(Settings(store="memory://", secret="x", quiet=True))).start()
    try:
        mine = EmulatorClient(server.url)
        token = mine.mint(app_key="demo_app")
        requests.post(server.url + "/v1/validate", json={"pass_token": token}, timeout=10,
                      headers={"X-App-Key": "demo_app", "X-App-Secret": "demo_secret"})
        before = mine.requests(app_key="demo_app")
        keys = tmp_path / "keys.txt"
        sessions = [_session(pytester, name, server.url, keys) for name in ("first", "second")]
        outputs = [p.communicate(timeout=240)[0] for p in sessions]
        assert [p.returncode for p in sessions] == [0, 0], "\n".join(o[-3000:] for o in outputs)
        assert len(set(keys.read_text().split())) == 2, "each session has its own app"
        assert mine.requests(app_key="demo_app") == before, "a session wiped or touched another user's state"
        assert mine.explain(token)["state"] == "consumed"
        assert {a["app_key"] for a in mine.apps() if a["runtime"]} == set(), "the sessions remove their apps"
    finally:
        server.stop()


def test_in_process_handles_use_the_real_apps(pytester):
    pytester.makepyfile(test_inproc="""
def test_app_handles(captchala_emulator):
    strict = captchala_emulator.app("strict_ip_app")
    assert (strict.app_key, strict.app_secret) == ("strict_ip_app", "strict_ip_secret")
    made = captchala_emulator.new_app(app_key="made_here", ip_binding="strict")
    assert made.app_key == "made_here" and made.explain(made.mint())["claims"]["app_key"] == "made_here"
""")
    pytester.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=1)


def test_without_the_built_in_apps_the_fixture_still_starts(pytester):
    pytester.makefile(".yaml", apps="- {app_key: shop_app, app_secret: shop_secret}\n")
    pytester.makeconftest("""
import pytest

@pytest.fixture(scope="session")
def captchala_emulator_settings():
    return {"apps": "apps.yaml", "no_builtin_apps": True}
""")
    pytester.makepyfile(test_apps="""
def test_a_handle_for_the_file_app(captchala_emulator):
    shop = captchala_emulator.app("shop_app")
    assert shop.explain(shop.mint())["state"] == "valid"
""")
    pytester.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=1)

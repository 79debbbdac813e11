"""The control CLI (issue 13 item 4): subcommands that talk to a running emulator, all resolving
its URL the same way (--url, CAPTCHALA_EMULATOR_URL, the port in CAPTCHALA_EMULATOR_PORT, 8080)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest
import requests
from click.testing import CliRunner

from emulator.app import create_app
from emulator.cli import main
from emulator.cli_control import resolve_url
from emulator.server import ThreadServer
from emulator.settings import Settings

ADMIN = "cli-admin"


@pytest.fixture
def server():
    running = ThreadServer(create_app(Settings(store="memory://", secret="s", quiet=True, admin_token=ADMIN))).start()
    yield running
    running.stop()


@pytest.fixture
def cli(server):
    """Run `captchala-emulator ...` against the server, found through CAPTCHALA_EMULATOR_PORT alone."""
    runner = CliRunner()
    env = {"CAPTCHALA_EMULATOR_URL": "", "CAPTCHALA_EMULATOR_PORT": str(server.port),
           "CAPTCHALA_EMULATOR_ADMIN_TOKEN": ADMIN}

    def run(*args: str, code: int = 0):
        result = runner.invoke(main, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    return run


def test_one_url_resolution():
    assert resolve_url("http://x:1/", {}) == "http://x:1"
    assert resolve_url(None, {"CAPTCHALA_EMULATOR_URL": "http://y:2", "CAPTCHALA_EMULATOR_PORT": "9"}) == "http://y:2"
    assert resolve_url(None, {"CAPTCHALA_EMULATOR_PORT": "9000"}) == "http://127.0.0.1:9000"
    assert resolve_url(None, {}) == "http://127.0.0.1:8080"


def test_mint_follows_the_port(cli):
    token = cli("mint", "--action", "login").strip()
    assert token.startswith("pt_")
    assert json.loads(cli("explain", token))["state"] == "valid"


def test_reset_all_or_one_app(cli, server):
    cli("mint")
    assert "reset app demo_app" in cli("reset", "--app-key", "demo_app")
    assert cli("requests", "--json") == ""
    cli("mint")
    assert "reset everything" in cli("reset")
    assert "no app with key 'nope'" in cli("reset", "--app-key", "nope", code=1)


def test_profile_show_switch_and_off(cli, tmp_path):
    assert cli("profile").strip() == "no fault profile active"
    assert "main-down" in cli("profile", "main-down")
    assert cli("profile").startswith("main-down")
    path = tmp_path / "p.yaml"
    path.write_text("name: mine\nrules:\n  - name: slow\n    match: {endpoint: validate}\n"
                    "    effect: {latency_ms: 1}\n")
    assert "mine" in cli("profile", str(path))
    assert "no fault profile active" in cli("profile", "--off")
    assert "unknown_profile" in cli("profile", "no-such-profile", code=1)


def test_requests_with_filters_as_text_and_json(cli):
    token = cli("mint", "--action", "login").strip()
    cli("mint", "--app-key", "auto_pass_app")
    lines = cli("requests", "--app-key", "demo_app").splitlines()
    assert len(lines) == 1 and "mint" in lines[0] and "(demo_app)" in lines[0]
    entries = [json.loads(line) for line in cli("requests", "--json", "--endpoint", "mint").splitlines()]
    assert [e["app_key"] for e in entries] == ["demo_app", "auto_pass_app"]
    assert cli("requests", "--outcome", "valid") == ""
    assert token


def test_clock_show_advance_and_offset(cli):
    assert "offset 0" in cli("clock")
    assert "offset 301" in cli("clock", "--advance", "301")
    assert "offset -5" in cli("clock", "--offset", "-5")


def test_apps_list_add_and_remove(cli, tmp_path):
    path = tmp_path / "apps.yaml"
    path.write_text("- {app_key: shop_app, app_secret: shop_secret}\n- {app_key: blog_app, app_secret: b}\n")
    assert "added shop_app" in cli("apps", "--add", str(path))
    assert "shop_app/shop_secret" in cli("apps")
    assert "removed shop_app" in cli("apps", "--remove", "shop_app")
    assert "shop_app" not in cli("apps")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {app_key: x, app_secret: y, colour: red}\n")
    assert f"{bad}: apps[0].colour: unknown key" in cli("apps", "--add", str(bad), code=2)


def test_a_missing_admin_token_and_an_unreachable_emulator_are_one_line(server):
    runner = CliRunner()
    refused = runner.invoke(main, ["reset", "--url", server.url], env={"CAPTCHALA_EMULATOR_ADMIN_TOKEN": ""})
    assert refused.exit_code == 1 and "HTTP 401 unauthorized" in refused.output
    gone = runner.invoke(main, ["reset", "--url", "http://127.0.0.1:9"])
    assert gone.exit_code == 1 and "cannot reach http://127.0.0.1:9" in gone.output
    assert "Traceback" not in gone.output


def test_requests_follow_prints_new_entries_as_they_come(server):
    env = {**os.environ, "CAPTCHALA_EMULATOR_ADMIN_TOKEN": ADMIN, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "emulator", "requests", "--follow", "--url", server.url, "--endpoint", "mint"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines: list[str] = []
        got = threading.Event()

        def read() -> None:
            for line in proc.stdout:
                lines.append(line)
                got.set()

        threading.Thread(target=read, daemon=True).start()
        requests.post(server.url + "/_emulator/pass-tokens", json={"app_key": "demo_app"},
                      headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10).raise_for_status()
        assert got.wait(30), "no line for a new journal entry"
        assert "mint" in lines[0] and "(demo_app)" in lines[0]
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()

"""`captchala-emulator doctor`: the findings of GET /_emulator/diagnosis from a running emulator,
as text or JSON; exit 0 when quiet, 1 with findings, 2 on a bad filter or an unreachable emulator."""

from __future__ import annotations

import json

import pytest
import requests
from click.testing import CliRunner

from emulator.app import create_app
from emulator.cli import main
from emulator.server import ThreadServer
from emulator.settings import Settings

DEMO = {"X-App-Key": "demo_app", "X-App-Secret": "demo_secret"}


@pytest.fixture
def url(tmp_path):
    settings = Settings(store=f"sqlite:///{tmp_path / 'state.db'}", secret="doctor", quiet=True, port=0)
    server = ThreadServer(create_app(settings)).start()
    try:
        yield server.url
    finally:
        server.stop()


def doctor(*args: str):
    return CliRunner().invoke(main, ["doctor", *args])


def test_quiet_emulator_exit_0(url):
    result = doctor("--url", url)
    assert result.exit_code == 0 and "No findings" in result.output


def test_findings_as_text_and_json_exit_1(url):
    requests.post(url + "/v1/validate", json={"pass_token": ""}, headers=DEMO, timeout=5)
    requests.post(url + "/v1/validate", json={"pass_token": "x"}, timeout=5,
                  headers={"X-App-Key": "demo_app", "X-App-Secret": "auto_pass_secret"})
    text = doctor("--url", url)
    assert text.exit_code == 1
    assert "submitted_before_token ×1" in text.output and "credentials_mismatch ×1" in text.output
    assert "fix:" in text.output and "secret belongs to app auto_pass_app" in text.output
    as_json = doctor("--url", url, "--json", "--app-key", "demo_app")
    assert as_json.exit_code == 1
    assert [f["id"] for f in json.loads(as_json.output)] == ["submitted_before_token", "credentials_mismatch"]
    assert doctor("--url", url, "--app-key", "auto_pass_app").exit_code == 0


def test_bad_since_and_unreachable_exit_2(url):
    bad = doctor("--url", url, "--since", "last tuesday")
    assert bad.exit_code == 2 and "since" in bad.output
    gone = doctor("--url", "http://127.0.0.1:9")
    assert gone.exit_code == 2 and "cannot talk to the emulator" in gone.output

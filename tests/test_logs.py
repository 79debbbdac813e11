"""One structured log line per API request, text or JSON, with secrets and tokens redacted."""

from __future__ import annotations

import json

import pytest

from emulator.app import create_app
from emulator.logs import format_line, redact
from emulator.runtime import build_runtime
from tests.support.apps import DEMO


@pytest.fixture
def json_client(settings, fake_time):
    rt = build_runtime(settings.replace(log_format="json"), real_time=fake_time)
    yield create_app(runtime=rt).test_client()
    rt.store.close()


@pytest.fixture
def text_client(settings, fake_time):
    rt = build_runtime(settings.replace(log_format="text"), real_time=fake_time)
    yield create_app(runtime=rt).test_client()
    rt.store.close()


def log_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_json_log_has_one_line_per_api_request_and_no_secret_or_token(json_client, capsys):
    token = json_client.post("/_emulator/pass-tokens", json={"action": "login"}).json["pass_token"]
    capsys.readouterr()  # the control plane is not request-logged
    json_client.post("/v1/validate", json={"pass_token": token}, headers=DEMO)
    json_client.post("/v1/validate", json={"pass_token": token}, headers=DEMO)
    json_client.post("/v1/validate", json={"pass_token": token},
                     headers={"X-App-Key": "demo_app", "X-App-Secret": "auto_pass_secret"})
    lines = log_lines(capsys)
    assert len(lines) == 3
    records = [json.loads(line) for line in lines]
    assert [(r["outcome"], r.get("code")) for r in records] == [
        ("valid", None), ("rejected", "token_consumed"), ("error", "invalid_app_secret")]
    first = records[0]
    assert first["endpoint"] == "validate" and first["path"] == "/v1/validate" and first["status"] == 200
    assert first["app_key"] == "demo_app" and first["token_kind"] == "pass" and len(first["token_fp"]) == 16
    assert records[2]["reason"] == "secret belongs to app auto_pass_app, not demo_app"
    text = "\n".join(lines)
    for secret in (token, token[3:40], "demo_secret", "auto_pass_secret"):
        assert secret not in text


def test_no_request_log_line_by_default_the_journal_still_has_the_entry(client, capsys, mint):
    token = mint(ttl=60)
    capsys.readouterr()
    client.post("/v1/validate", json={"pass_token": token}, headers=DEMO)
    assert log_lines(capsys) == []
    assert client.get("/_emulator/requests?endpoint=validate").json["requests"][-1]["outcome"] == "valid"


def test_text_log_line_reads_like_a_sentence(text_client, capsys):
    client = text_client
    token = client.post("/_emulator/pass-tokens", json={"action": "login", "ttl": 60}).json["pass_token"]
    client.post("/_emulator/clock/advance", json={"seconds": 70})
    capsys.readouterr()
    client.post("/v1/validate", json={"pass_token": token}, headers=DEMO)
    [line] = log_lines(capsys)
    assert " POST /v1/validate 200 " in line
    assert "rejected token_expired app_key=demo_app caller_ip=127.0.0.1 token_kind=pass token_fp=" in line
    assert line.endswith('reason="token expired 10 s ago (lifetime 60 s)"')
    assert token not in line


def test_redact_shortens_tokens_and_hides_secret_values():
    assert redact("got pt_eyJhcHAiOiJkZW1vIn0.sig from x") == "got pt_eyJh… from x"
    assert redact("sct_abcdefghijkl and offline_abcdefghij") == "sct_abcd… and offline_abcd…"
    assert redact("app_secret=hunter2 next") == "app_secret=[redacted] next"
    assert redact('{"admin_token": "t0k"}') == '{"admin_token": "[redacted]"}'
    assert redact("pt_short") == "pt_short"


def test_format_line_uses_an_allow_list_of_fields():
    entry = {"id": 3, "ts": 1_800_000_000.25, "endpoint": "validate", "method": "POST", "path": "/v1/validate",
             "status": 200, "outcome": "valid", "app_key": "demo_app", "duration_ms": 1.5,
             "app_secret": "demo_secret", "pass_token": "pt_eyJhcHAiOiJkZW1vIn0.sig"}
    record = json.loads(format_line(entry, "json"))
    assert record["ts"] == "2027-01-15T08:00:00.250Z"
    assert "app_secret" not in record and "pass_token" not in record
    assert format_line(entry, "text") == ("2027-01-15T08:00:00.250Z #3 POST /v1/validate 200 1.5ms valid "
                                          "app_key=demo_app")

"""Who gets in and who they are (issue 10, items 13, 15 and 17): cross-site writes and foreign
Host names refused on the control plane, forwarded IPs only when they are IPs, secrets kept out
of logs, answers and the banner."""

from __future__ import annotations

import json
import logging

import pytest

from emulator.app import create_app
from emulator.logs import LOGGER_NAME, format_line, redact_url
from emulator.runtime import build_runtime

DEMO = {"X-App-Key": "demo_app", "X-App-Secret": "demo_secret"}
WRITES = (("POST", "/_emulator/reset"), ("POST", "/_emulator/pass-tokens"), ("PUT", "/_emulator/clock"),
          ("POST", "/_emulator/clock/advance"), ("PUT", "/_emulator/profile"), ("DELETE", "/_emulator/profile"))


def app_with(settings, fake_time, **changes):
    rt = build_runtime(settings.replace(**changes), real_time=fake_time)
    return create_app(runtime=rt).test_client(), rt


# --- item 13: cross-site writes ----------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), WRITES)
@pytest.mark.parametrize("headers", [{"Origin": "http://evil.example"}, {"Origin": "null"},
                                     {"Origin": "http://localhost:3000"}, {"Sec-Fetch-Site": "cross-site"}],
                         ids=["other-origin", "null-origin", "other-port", "sec-fetch-site"])
def test_cross_site_writes_to_the_control_plane_are_refused(client, method, path, headers):
    response = client.open(path, method=method, json={"seconds": 5, "offset": 5}, headers=headers)
    assert response.status_code == 403, response.json
    assert response.json["error"] == "cross_origin"


def test_a_cross_site_reset_cannot_revive_a_consumed_token(client, mint, validate):
    token = mint()
    assert validate(token)["data"]["valid"] is True
    assert client.post("/_emulator/reset", headers={"Origin": "https://attacker.example"}).status_code == 403
    assert validate(token)["data"]["error"] == "token_consumed"


def test_same_origin_and_origin_less_writes_still_work(client):
    assert client.post("/_emulator/clock/advance", json={"seconds": 1}).status_code == 200  # curl, client, CLI
    same = client.post("/_emulator/clock/advance", json={"seconds": 1},
                       headers={"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 200
    assert client.get("/_emulator/clock", headers={"Origin": "http://evil.example"}).status_code == 200


def test_the_api_keeps_answering_any_origin(client, mint):
    response = client.post("/v1/validate", json={"pass_token": mint()},
                           headers={**DEMO, "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert response.json["data"]["valid"] is True


# --- item 13: DNS rebinding ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/_emulator/requests", "/_emulator/health", "/_emulator/", "/_emulator/apps"])
def test_a_foreign_host_is_refused_on_the_control_plane(client, path):
    response = client.get(path, headers={"Host": "rebound.attacker.example"})
    assert response.status_code == 403 and response.json["error"] == "host_not_allowed"


@pytest.mark.parametrize("host", ["localhost", "localhost:8080", "127.0.0.1:8080", "127.9.9.9", "[::1]:8080",
                                  "app.localhost", "LOCALHOST."])
def test_loopback_hosts_are_answered(client, host):
    assert client.get("/_emulator/health", headers={"Host": host}).status_code == 200


def test_allowed_host_and_the_bound_host_are_answered(settings, fake_time):
    client, rt = app_with(settings, fake_time, allowed_host="captchala, emu.test", host="10.1.2.3")
    for host in ("captchala:8080", "emu.test", "10.1.2.3:8080"):
        assert client.get("/_emulator/health", headers={"Host": host}).status_code == 200, host
    assert client.get("/_emulator/health", headers={"Host": "other"}).status_code == 403
    assert client.post("/v1/validate", json={}, headers={**DEMO, "Host": "other"}).status_code == 200
    rt.store.close()


def test_a_star_allows_every_host(settings, fake_time):
    client, rt = app_with(settings, fake_time, allowed_host="*")
    assert client.get("/_emulator/health", headers={"Host": "anything.example"}).status_code == 200
    rt.store.close()


# --- item 15: --trust-proxy takes only an IP -------------------------------------------------------


@pytest.mark.parametrize(("forwarded", "expected", "noted"), [
    ("203.0.113.9", "203.0.113.9", False),
    ("10.0.0.1, 198.51.100.4", "198.51.100.4", False),
    ("::ffff:192.0.2.33", "192.0.2.33", False),
    ("not-an-ip", "127.0.0.1", True),
    ("203.0.113.9:443", "127.0.0.1", True),
    ("unknown\x7f\x1b", "127.0.0.1", True),
    ("", "127.0.0.1", True),
])
def test_trust_proxy_accepts_only_a_forwarded_ip(settings, fake_time, forwarded, expected, noted):
    client, rt = app_with(settings, fake_time, trust_proxy=True)
    client.post("/v1/validate", json={"pass_token": "pt_x"}, headers={**DEMO, "X-Forwarded-For": forwarded},
                environ_base={"REMOTE_ADDR": "127.0.0.1"})
    entry = client.get("/_emulator/requests").json["requests"][-1]
    assert entry["caller_ip"] == expected
    assert ("caller_ip_note" in entry) is noted
    if noted:
        assert "not an IP" in entry["caller_ip_note"] and "\n" not in entry["caller_ip_note"]
    rt.store.close()


def test_without_trust_proxy_forwarded_headers_are_ignored(client):
    client.post("/v1/validate", json={}, headers={**DEMO, "X-Forwarded-For": "203.0.113.9"})
    assert client.get("/_emulator/requests").json["requests"][-1]["caller_ip"] == "127.0.0.1"


def test_an_ipv4_mapped_peer_is_recorded_as_ipv4(client):
    client.post("/v1/validate", json={}, headers=DEMO, environ_base={"REMOTE_ADDR": "::ffff:192.0.2.7"})
    assert client.get("/_emulator/requests").json["requests"][-1]["caller_ip"] == "192.0.2.7"


# --- item 17: secrets stay secret -----------------------------------------------------------------


@pytest.mark.parametrize(("url", "secret"), [("redis://:hunter2@h:6379/0", "hunter2"),
                                             ("redis://h:6379/0?password=hunter2", "hunter2"),
                                             ("redis://u:pw1@h/0?db=1&password=hunter2", "hunter2")])
def test_a_store_url_never_shows_its_password(url, secret):
    from emulator.store.redis import RedisStore

    assert secret not in redact_url(url) and "***" in redact_url(url)
    assert secret not in RedisStore(url).url
    assert redact_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_log_lines_escape_control_characters():
    entry = {"ts": 1.0, "id": 1, "method": "POST", "path": "/v1/validate\r\n2026 #2 forged", "status": 200,
             "duration_ms": 1.0, "outcome": "error", "reason": "no app with key 'a\nb\x1b[31m'", "app_key": "x\ny"}
    for fmt in ("text", "json"):
        line = format_line(entry, fmt)
        assert "\n" not in line and "\r" not in line and "\x1b" not in line, line
    assert "\\n" in format_line(entry, "text")
    assert json.loads(format_line(entry, "json"))["app_key"] == "x\\ny"


@pytest.mark.parametrize("secret", ["demo_secret", "sesame-admin"])
def test_a_known_secret_in_the_key_header_is_never_logged(settings, fake_time, secret, capsys):
    client, rt = app_with(settings, fake_time, admin_token="sesame-admin")
    logging.getLogger(LOGGER_NAME).setLevel(logging.INFO)
    answer = client.post("/v1/validate", json={"pass_token": "pt_x"}, headers={"X-App-Key": secret})
    assert answer.json["error"] == "invalid_app_key"
    entry = client.get("/_emulator/requests", headers={"Authorization": "Bearer sesame-admin"}).json["requests"][-1]
    assert secret not in json.dumps(entry) and secret not in answer.get_data(as_text=True)
    assert secret not in capsys.readouterr().err
    rt.store.close()


def test_the_banner_shows_apps_file_secrets_only_when_asked(tmp_path, settings, fake_time, capsys):
    from emulator.cli import banner

    apps = tmp_path / "apps.yaml"
    apps.write_text("- {app_key: shop, app_secret: s3cr3t-value}\n")
    for show, visible in ((False, False), (True, True)):
        rt = build_runtime(settings.replace(apps=str(apps), quiet=False, show_secrets=show), real_time=fake_time)
        banner(rt, "127.0.0.1", 8080)
        out = capsys.readouterr().out
        assert ("s3cr3t-value" in out) is visible and "demo_app/demo_secret" in out
        assert visible or "shop/***" in out

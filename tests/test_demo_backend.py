"""Issue 13 item 13: the vendor's React and Vue demos fetch server tokens from
demo-v1.captcha.la/demo/issue-captcha-token?action=…&app_key=…; the emulator answers that path
(and --tls auto covers the host name), so the demos run fully offline."""

from __future__ import annotations

from tests.conftest import DEMO

PATH = "/demo/issue-captcha-token"


def test_the_demo_path_issues_a_server_token_the_app_accepts(client):
    answer = client.get(PATH + "?action=login&app_key=server_token_app", headers={"Origin": "https://demo.example"})
    assert answer.status_code == 200 and answer.headers["Access-Control-Allow-Origin"] == "*"
    assert answer.json["code"] == 0
    token = answer.json["data"]["server_token"]
    assert token.startswith("sct_")
    explained = client.get("/_emulator/tokens/" + token).json
    assert explained["kind"] == "server" and explained["claims"]["app_key"] == "server_token_app"
    assert client.get("/_emulator/requests?endpoint=issue").json["requests"][-1]["path"] == PATH


def test_the_demo_path_refuses_an_unknown_app_or_a_missing_action(client):
    unknown = client.get(PATH + "?action=login&app_key=nope").json
    assert unknown["code"] != 0 and unknown["data"]["error"] == "invalid_app_key"
    missing = client.get(PATH + "?app_key=demo_app").json
    assert missing["code"] != 0 and missing["data"]["error"] == "invalid_action"
    assert client.post(PATH, json={"action": "login", "app_key": "demo_app"}, headers=DEMO).json["code"] == 0


def test_tls_auto_covers_the_demo_host():
    from emulator.tls import HOST_NAMES

    assert "demo-v1.captcha.la" in HOST_NAMES

"""Runtime apps (issue 13 item 3): POST /_emulator/apps validated exactly like an apps file,
409 on a taken key, DELETE /_emulator/apps/<key>, and the app works everywhere at once."""

from __future__ import annotations

import pytest

from emulator.client import ControlPlaneError, EmulatorClient
from emulator.domain.apps import parse_app
from emulator.errors import ConfigError
from emulator.server import ThreadServer

SHOP = {"app_key": "shop_app", "app_secret": "shop_secret", "pass_token_ttl": 30, "ip_binding": "strict"}


def test_a_posted_app_validates_tokens_at_once(client, mint, validate):
    created = client.post("/_emulator/apps", json=SHOP)
    assert created.status_code == 201
    assert created.json["app"]["app_key"] == "shop_app" and created.json["app"]["runtime"] is True
    token = mint(app_key="shop_app", client_ip="127.0.0.1")
    headers = {"X-App-Key": "shop_app", "X-App-Secret": "shop_secret"}
    assert validate(token, headers=headers)["data"]["valid"] is True
    listed = {a["app_key"]: a for a in client.get("/_emulator/apps").json["apps"]}
    assert listed["shop_app"]["pass_token_ttl"] == 30 and listed["demo_app"]["runtime"] is False


@pytest.mark.parametrize("key", ["shop_app", "demo_app"])
def test_a_taken_key_is_409(client, key):
    client.post("/_emulator/apps", json=SHOP)
    again = client.post("/_emulator/apps", json={**SHOP, "app_key": key})
    assert again.status_code == 409 and again.json["error"] == "app_exists"


@pytest.mark.parametrize("body", [
    {"app_key": "x", "app_secret": "y", "widget": {"solve": "maybe"}},
    {"app_key": "x", "app_secret": "y", "colour": "red"},
    {"app_key": "x"},
    {"app_key": "x", "app_secret": "y", "risk_score": 101},
])
def test_a_bad_app_gets_the_apps_file_validators_message(client, body):
    answer = client.post("/_emulator/apps", json=body)
    with pytest.raises(ConfigError) as expected:
        parse_app(body, "app")
    assert answer.status_code == 422 and answer.json["error"] == "invalid_app"
    assert answer.json["message"] == str(expected.value)
    assert "x" not in {a["app_key"] for a in client.get("/_emulator/apps").json["apps"]}


def test_delete_removes_the_app_and_its_state(client, mint, validate):
    client.post("/_emulator/apps", json=SHOP)
    token = mint(app_key="shop_app")
    assert client.delete("/_emulator/apps/shop_app").status_code == 200
    assert client.get("/_emulator/requests?app_key=shop_app").json["requests"] == []
    headers = {"X-App-Key": "shop_app", "X-App-Secret": "shop_secret"}
    assert validate(token, headers=headers)["code"] != 0
    assert client.delete("/_emulator/apps/shop_app").status_code == 404
    assert client.delete("/_emulator/apps/demo_app").status_code == 409


def test_a_token_consumed_before_its_app_was_removed_stays_consumed_when_the_key_is_added_again(
        client, mint, validate):
    """Single use is absolute: removing an app forgets its counters and journal, never the tokens
    it consumed (they go when they expire), whatever secret the key comes back with."""
    client.post("/_emulator/apps", json=SHOP)
    token = mint(app_key="shop_app", client_ip="127.0.0.1")
    headers = {"X-App-Key": "shop_app", "X-App-Secret": "shop_secret"}
    assert validate(token, headers=headers)["data"]["valid"] is True
    for secret in ("shop_secret", "other_secret"):
        assert client.delete("/_emulator/apps/shop_app").status_code == 200
        assert client.post("/_emulator/apps", json={**SHOP, "app_secret": secret}).status_code == 201
        again = validate(token, headers={**headers, "X-App-Secret": secret})
        assert again["data"] == {"valid": False, "error": "token_consumed"}, again


def test_the_client_adds_lists_and_removes(app):
    server = ThreadServer(app).start()
    try:
        client = EmulatorClient(server.url)
        assert client.add_app(**SHOP)["app_key"] == "shop_app"
        assert "shop_app" in {a["app_key"] for a in client.apps()}
        with pytest.raises(ControlPlaneError) as taken:
            client.add_app(**SHOP)
        assert taken.value.status == 409
        client.remove_app("shop_app")
        assert "shop_app" not in {a["app_key"] for a in client.apps()}
    finally:
        server.stop()


def test_the_dashboard_lists_a_runtime_app_as_such(client):
    client.post("/_emulator/apps", json=SHOP)
    page = client.get("/_emulator/").get_data(as_text=True)
    row = page.split('data-app-key="shop_app"', 1)[1].split("</tr>", 1)[0]
    assert "(runtime)" in row and "(apps file)" not in row

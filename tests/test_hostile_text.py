"""A lone UTF-16 surrogate: `"\\ud800"` is valid JSON (and valid YAML), but the string it makes is
not text; nothing can store, encode or send it. Wherever a body or a file brings one in, the
answer is a clear refusal that says where it is, never a 500, and the request is journaled."""

from __future__ import annotations

import pytest

from emulator.domain.apps import load_apps_file
from emulator.errors import ConfigError
from emulator.faults.profile import ProfileError, load_yaml
from tests.support.apps import DEMO

LONE = b'"\\ud800"'  # the JSON text: backslash, u, d800


@pytest.mark.parametrize("path, body, headers", [
    ("/v1/challenge/init", b'{"app_key":' + LONE + b',"action":"login"}', {}),
    ("/v1/challenge/offline", b'{"app_key":' + LONE + b'}', {}),
    ("/v1/validate", b'{"pass_token":"pt_x","client_ip":"1.2.3.4","extra":{"deep":[' + LONE + b"]}}", DEMO),
    ("/v1/server/challenge/issue", b'{"action":' + LONE + b"}", DEMO),
])
def test_an_api_body_with_a_lone_surrogate_is_invalid_request_and_journaled(client, path, body, headers):
    before = client.get("/_emulator/requests").json["latest_id"]
    answer = client.post(path, data=body, headers={**headers, "Content-Type": "application/json"})
    assert answer.status_code < 500 and answer.is_json, answer.data[:300]
    assert answer.json["code"] == 400 and answer.json["error"] == "invalid_request"
    assert "lone UTF-16 surrogate" in answer.headers["X-Captchala-Emulator-Reason"]
    entry = client.get("/_emulator/requests").json["requests"][-1]
    assert entry["id"] == before + 1 and entry["code"] == "invalid_request"


@pytest.mark.parametrize("method, path, body, where", [
    ("post", "/_emulator/pass-tokens", b'{"app_key":' + LONE + b"}", "app_key"),
    ("post", "/_emulator/apps", b'{"app_key":"a","app_secret":' + LONE + b"}", "app_secret"),
    ("put", "/_emulator/profile",
     b'{"profile":{"name":"p","rules":[{"name":"r","match":{"endpoint":"validate"},'
     b'"effect":{"status":503,"body":' + LONE + b"}}]}}", "profile.rules[0].effect.body"),
    ("post", "/_emulator/apps", b'{"app_key":"a","app_secret":"b",' + LONE + b":1}", "\\ud800"),
])
def test_a_control_body_with_a_lone_surrogate_is_a_clear_400(client, method, path, body, where):
    answer = getattr(client, method)(path, data=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.data[:300]
    assert answer.json["error"] == "invalid_request"
    assert f"{where} holds a lone UTF-16 surrogate" in answer.json["message"]
    assert "Traceback" not in answer.get_data(as_text=True) and "UnicodeEncodeError" not in answer.json["message"]


def test_a_surrogate_pair_is_one_character_and_works(client):
    answer = client.post("/v1/server/challenge/issue", data=b'{"action":"\\ud83d\\ude00"}',
                         headers={**DEMO, "Content-Type": "application/json"})
    assert answer.json["code"] == 0


def test_a_profile_file_with_a_lone_surrogate_names_the_key_path():
    with pytest.raises(ProfileError) as caught:
        load_yaml('rules: [{name: r, effect: {status: 503, body: "\\ud800"}}]', "profiles/x.yaml")
    assert caught.value.path == "rules[0].effect.body"
    assert caught.value.problem.startswith("a lone UTF-16 surrogate")


def test_an_apps_file_with_a_lone_surrogate_names_file_and_key_path(tmp_path):
    path = tmp_path / "apps.yaml"
    path.write_text('- {app_key: a, app_secret: "\\ud800"}\n')
    with pytest.raises(ConfigError) as caught:
        load_apps_file(str(path))
    assert str(caught.value).startswith(f"{path}: apps[0].app_secret: a lone UTF-16 surrogate")

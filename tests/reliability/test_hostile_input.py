"""Hostile input, one case per known hole: each answers a clear 4xx (or the envelope), never a
5xx or a traceback, never unbounded memory (issue 10, items 5 and 6)."""

from __future__ import annotations

import base64
import json
import tracemalloc
import zlib

import pytest

from emulator.domain.apps import load_apps_file
from emulator.errors import ConfigError
from emulator.faults.profile import ProfileError, load_yaml

DEMO = {"X-App-Key": "demo_app", "X-App-Secret": "demo_secret"}
DEEP_JSON = "[" * 5000 + "]" * 5000
DEEP_OBJECT = '{"a":' * 5000 + "1" + "}" * 5000
API_POSTS = ("/v1/validate", "/api/validate", "/v1/challenge/verify", "/v1/server/challenge/issue",
             "/v1/moderation/check", "/v1/moderation/text", "/v1/challenge/init", "/v1/challenge/solve",
             "/v1/challenge/offline")
CONTROL_WRITES = (("POST", "/_emulator/pass-tokens"), ("PUT", "/_emulator/clock"), ("POST", "/_emulator/clock/advance"),
                  ("PUT", "/_emulator/profile"))
HUGE_NUMBERS = ("1e400", "2e308", "-1e400", "1" + "0" * 400)


def bomb_token(prefix: str = "pt_", inflated: int = 20_000_000) -> str:
    """A token-shaped string whose compressed payload inflates to `inflated` bytes (no valid signature)."""
    claims = json.dumps({"app": "demo_app", "jti": "x", "exp": 1, "pad": "a" * inflated}).encode()
    packed = base64.urlsafe_b64encode(zlib.compress(claims, 9)).rstrip(b"=").decode()
    return f"{prefix}.{packed}.c2lnbmF0dXJl"


def assert_clean(response, what: str) -> None:
    assert response.status_code < 500, f"{what}: HTTP {response.status_code} {response.data[:200]!r}"
    assert b"Traceback" not in response.data and b"RecursionError" not in response.data, what


# --- item 5: bounded token decoding ------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/validate", "/api/validate"])
def test_a_compressed_bomb_token_is_refused_without_being_inflated(client, path):
    token = bomb_token()
    tracemalloc.start()
    try:
        wrong = client.post(path, json={"pass_token": token}, headers={**DEMO, "X-App-Secret": "nope"})
        right = client.post(path, json={"pass_token": token}, headers=DEMO)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert wrong.json["error"] == "invalid_app_secret"
    assert right.json["data"] == {"valid": False, "error": "invalid_token"}
    assert peak < 4_000_000, f"decoding a forged token took {peak} bytes"


def test_explain_and_fault_matching_do_not_inflate_a_bomb_either(client):
    rule = {"name": "r", "match": {"endpoint": "validate", "action": "x"}, "effect": {"latency_ms": 0}}
    assert client.put("/_emulator/profile", json={"profile": {"rules": [rule]}}).status_code == 200
    token = bomb_token(inflated=3_000_000)[:1024]
    tracemalloc.start()
    try:
        client.post("/v1/validate", json={"pass_token": token}, headers=DEMO)
        client.get("/_emulator/tokens/" + token)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000


def test_a_signed_but_deeply_nested_payload_is_just_invalid(runtime, client):
    from itsdangerous import URLSafeSerializer

    packed = base64.urlsafe_b64encode(zlib.compress(b"[" * 5000 + b"]" * 5000)).rstrip(b"=")
    signed = URLSafeSerializer("test-secret", salt="captchala-emulator/pass").make_signer().sign(b"." + packed)
    token = "pt_" + signed.decode()
    assert runtime.signer.peek(token)[1] is None
    answer = client.post("/v1/validate", json={"pass_token": token}, headers=DEMO).json
    assert answer["data"]["error"] == "invalid_token"


# --- item 6: deep JSON, odd fields, huge numbers ---------------------------------------------


@pytest.mark.parametrize("body", [DEEP_JSON, DEEP_OBJECT], ids=["array", "object"])
def test_json_nested_5000_deep_is_invalid_request_everywhere(client, body):
    for path in API_POSTS:
        response = client.post(path, data=body, headers={**DEMO, "Content-Type": "application/json"})
        assert_clean(response, path)
        assert response.json["error"] == "invalid_request", path
    for method, path in CONTROL_WRITES:
        response = client.open(path, method=method, data=body, headers={"Content-Type": "application/json"})
        assert_clean(response, path)
        assert response.status_code in (400, 422), (path, response.json)


def test_deep_json_with_an_active_profile_is_still_clean(client):
    """The fault engine peeks at bodies to match rules: a deep body has no facts, not a 500."""
    rule = {"name": "r", "match": {"endpoint": "validate", "app_key": "demo_*"}, "effect": {"latency_ms": 0}}
    assert client.put("/_emulator/profile", json={"profile": {"rules": [rule]}}).status_code == 200
    response = client.post("/v1/validate", data=DEEP_OBJECT, headers={**DEMO, "Content-Type": "application/json"})
    assert_clean(response, "validate")
    response = client.post("/v1/validate", data=DEEP_OBJECT, headers={"Content-Type": "application/json"})
    assert_clean(response, "validate without credentials")


@pytest.mark.parametrize("kind", [[], {}, 1, None, True])
def test_mint_kind_of_the_wrong_type_is_invalid_request(client, kind):
    response = client.post("/_emulator/pass-tokens", json={"kind": kind})
    assert response.status_code == 400 and response.json["error"] == "invalid_request"


@pytest.mark.parametrize("number", HUGE_NUMBERS)
def test_huge_ttls_and_seconds_are_refused_or_clamped(client, number):
    mint = client.post("/_emulator/pass-tokens", data=f'{{"ttl": {number}}}', content_type="application/json")
    assert mint.status_code == 400, mint.json
    issue = client.post("/v1/server/challenge/issue", data=f'{{"action": "a", "ttl": {number}}}',
                        headers={**DEMO, "Content-Type": "application/json"})
    assert_clean(issue, "issue")
    assert issue.json["code"] in (0, 400)
    for method, path, name in (("PUT", "/_emulator/clock", "offset"), ("POST", "/_emulator/clock/advance", "seconds")):
        response = client.open(path, method=method, data=f'{{"{name}": {number}}}', content_type="application/json")
        assert response.status_code == 400, (path, response.json)
    advance = client.post(f"/_emulator/clock/advance?seconds={number}")
    assert advance.status_code == 400


@pytest.mark.parametrize("path", ["/_emulator/requests", "/_emulator/requests/wait"])
@pytest.mark.parametrize("name", ["after", "limit"])
def test_journal_numbers_past_64_bits_are_invalid_request(client, path, name):
    response = client.get(f"{path}?{name}=99999999999999999999&timeout=0")
    assert response.status_code == 400, response.json
    assert response.json["error"] == "invalid_request"


# --- item 6: deep YAML and odd names --------------------------------------------------------


DEEP_YAMLS = ("[" * 3000 + "]" * 3000, "a:\n" + "- " * 3000 + "x\n", "{a: " * 3000 + "1" + "}" * 3000)


@pytest.mark.parametrize("text", DEEP_YAMLS, ids=["flow-list", "block-list", "flow-map"])
def test_yaml_nested_3000_deep_is_a_profile_error(client, text):
    with pytest.raises(ProfileError) as caught:
        load_yaml(text, "deep.yaml")
    assert str(caught.value).startswith("deep.yaml: ") and "nested too deeply" in str(caught.value)
    response = client.put("/_emulator/profile", data=text, content_type="application/yaml")
    assert response.status_code == 422 and "nested too deeply" in response.json["problem"]


@pytest.mark.parametrize("text", DEEP_YAMLS, ids=["flow-list", "block-list", "flow-map"])
def test_an_apps_file_nested_3000_deep_is_a_config_error(tmp_path, text):
    path = tmp_path / "apps.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_apps_file(str(path))
    assert str(caught.value).startswith(str(path)) and "nested too deeply" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_400_digit_pass_token_ttl_is_refused_at_start(tmp_path):
    path = tmp_path / "apps.yaml"
    path.write_text(f"- {{app_key: k, app_secret: s, pass_token_ttl: {'9' * 400}}}\n")
    with pytest.raises(ConfigError) as caught:
        load_apps_file(str(path))
    assert "pass_token_ttl" in str(caught.value) and "9999999999" not in str(caught.value)


@pytest.mark.parametrize("field", ["pass_token_ttl", "risk_score", "rate_limit", "quota"])
def test_every_integer_of_an_apps_file_has_a_ceiling(tmp_path, field):
    path = tmp_path / "apps.yaml"
    path.write_text(f"- {{app_key: k, app_secret: s, {field}: {10 ** 30}}}\n")
    with pytest.raises(ConfigError, match=field):
        load_apps_file(str(path))


def test_widget_delay_has_a_ceiling(tmp_path):
    path = tmp_path / "apps.yaml"
    path.write_text(f"- {{app_key: k, app_secret: s, widget: {{delay_ms: {10 ** 30}}}}}\n")
    with pytest.raises(ConfigError, match="delay_ms"):
        load_apps_file(str(path))


@pytest.mark.parametrize("name", ["x\n", "x\x00", "a\x00b", "x\r\n", "\nx"])
def test_profile_and_rule_names_with_control_characters_are_refused(client, name):
    good_rule = {"name": "r", "effect": {"latency_ms": 1}}
    for profile in ({"name": name, "rules": [good_rule]}, {"rules": [{**good_rule, "name": name}]}):
        response = client.put("/_emulator/profile", json={"profile": profile})
        assert response.status_code == 422, response.json
    response = client.put("/_emulator/profile", json={"name": name})
    assert response.status_code in (400, 404, 422), response.json


def test_a_newline_name_in_a_file_is_refused_by_check_profile(tmp_path):
    from click.testing import CliRunner

    from emulator.cli import main

    path = tmp_path / "p.yaml"
    path.write_text('name: "x\\n"\nrules:\n  - name: "r\\n"\n    effect: {latency_ms: 1}\n')
    result = CliRunner().invoke(main, ["check-profile", str(path)])
    assert result.exit_code == 2, result.output


@pytest.mark.parametrize("option", ["--profile", "--apps"])
def test_serve_refuses_a_file_nested_3000_deep_in_one_line(tmp_path, option):
    """The command line, not only the loaders: exit 2 and one line naming the file, before any bind."""
    import subprocess
    import sys

    path = tmp_path / "deep.yaml"
    path.write_text(DEEP_YAMLS[0])
    run = subprocess.run([sys.executable, "-m", "emulator", "serve", "--port", "0", "--store", "memory://",
                          "--workers", "1", option, str(path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "nested too deeply" in lines[0], run.stderr


def test_check_profile_refuses_a_file_nested_3000_deep_in_one_line(tmp_path):
    from click.testing import CliRunner

    from emulator.cli import main

    path = tmp_path / "deep.yaml"
    path.write_text(DEEP_YAMLS[1])
    result = CliRunner().invoke(main, ["check-profile", str(path)])
    assert result.exit_code == 2, result.output
    assert str(path) in result.output and "nested too deeply" in result.output
    assert "Traceback" not in result.output

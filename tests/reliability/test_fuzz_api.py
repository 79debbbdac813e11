"""Property: whatever arrives at an API endpoint — any JSON, any bytes, any headers — the answer
is the envelope {code: int, msg: str, data: object} and never a 5xx (hypothesis, derandomized:
the same 2 000+ cases on every run, through the Flask test client for speed)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.app import create_app
from emulator.settings import Settings

API_POSTS = ("/v1/validate", "/api/validate", "/v1/challenge/verify", "/v1/server/challenge/issue",
             "/v1/server-token/issue", "/v1/moderation/check", "/v1/moderation/text", "/v1/challenge/init",
             "/v1/challenge/solve", "/v1/challenge/offline")
VALIDATES = API_POSTS[:3]
PAIRS = (("demo_app", "demo_secret"), ("auto_pass_app", "auto_pass_secret"), ("always_fail_app", "always_fail_secret"),
         ("server_token_app", "server_token_secret"), ("strict_ip_app", "strict_ip_secret"),
         ("degraded_app", "degraded_secret"), ("disabled_app", "disabled_secret"))
FIELDS = ("pass_token", "token", "keep_token", "client_ip", "action", "ttl", "max_uses", "binding_ip", "bind_ip",
          "bind_uid", "input", "text", "app_key", "app_secret", "server_token", "challenge_id", "answer", "product",
          "lang", "referer", "platform", "kind", "uid")


def fuzz(examples: int) -> settings:
    """Deterministic: derandomized, no example database, no deadline (CI machines are noisy)."""
    return settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])

printable = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
scalars = (st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=60))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)
tokenish = st.builds(lambda p, rest: p + rest, st.sampled_from(["", "pt_", "sct_", "dg_", "offline_", "ch_"]),
                     st.text(max_size=80)) | st.text(alphabet="abcdefABCDEF0123456789._-", max_size=200)
bodies = st.fixed_dictionaries({}, optional={f: json_values | tokenish for f in FIELDS}) | json_values


@st.composite
def credentials(draw) -> dict[str, str]:
    key, secret = draw(st.sampled_from(PAIRS))
    headers = {}
    if draw(st.booleans()):
        headers["X-App-Key"] = draw(st.sampled_from([key, key.upper(), ""]) | printable)
    if draw(st.booleans()):
        headers["X-App-Secret"] = draw(st.sampled_from([secret, "demo_secret", ""]) | printable)
    return headers


extra_headers = st.dictionaries(
    st.sampled_from(["Referer", "X-Forwarded-For", "Origin", "Accept", "Content-Length", "Transfer-Encoding",
                     "Content-Encoding", "Authorization", "X-Captchala-Emulator-Fault"]), printable, max_size=3)
content_types = st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain",
                                 "application/x-www-form-urlencoded", "multipart/form-data",
                                 "multipart/form-data; boundary=x",
                                 "application/yaml", ""]) | printable


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "state.db"
    app = create_app(Settings(store=f"sqlite:///{path}", secret="fuzz-secret", seed=0, quiet=True))
    app.logger.disabled = True
    return app.test_client()


def assert_envelope(response, what: str) -> None:
    assert response.status_code < 500, f"{what}: HTTP {response.status_code} {response.data[:300]!r}"
    try:
        body = json.loads(response.data)
    except ValueError:
        raise AssertionError(f"{what}: not JSON: {response.data[:300]!r}") from None
    assert isinstance(body, dict), f"{what}: {body!r}"
    assert isinstance(body.get("code"), int) and not isinstance(body["code"], bool), f"{what}: {body}"
    assert isinstance(body.get("msg"), str), f"{what}: {body}"
    assert isinstance(body.get("data"), dict), f"{what}: {body}"


@fuzz(1000)
@given(path=st.sampled_from(API_POSTS), body=bodies, headers=credentials())
def test_any_json_body_gets_an_envelope(client, path, body, headers):
    response = client.post(path, data=json.dumps(body), headers={**headers, "Content-Type": "application/json"})
    assert_envelope(response, f"POST {path} {body!r:.200}")


@fuzz(700)
@given(path=st.sampled_from(API_POSTS), raw=st.binary(max_size=300) | st.text(max_size=200).map(str.encode),
       headers=credentials(), more=extra_headers, content_type=content_types,
       method=st.sampled_from(["POST"] * 6 + ["GET", "PUT", "DELETE", "PATCH"]))
def test_any_bytes_and_headers_get_an_envelope(client, path, raw, headers, more, content_type, method):
    response = client.open(path, method=method, data=raw, headers={**more, **headers, "Content-Type": content_type})
    assert_envelope(response, f"{method} {path} {raw[:120]!r} {content_type!r} {more}")


@fuzz(400)
@given(path=st.sampled_from(VALIDATES), token=tokenish, keep=json_values, client_ip=json_values | printable)
def test_any_token_field_gets_an_envelope(client, path, token, keep, client_ip):
    field = "token" if path == "/v1/challenge/verify" else "pass_token"
    body = {field: token, "keep_token": keep, "client_ip": client_ip}
    response = client.post(path, json=body, headers={"X-App-Key": "demo_app", "X-App-Secret": "demo_secret"})
    assert_envelope(response, f"POST {path} {body!r:.200}")

"""What the fuzz tests share: derandomized hypothesis settings, the API strategies and the envelope
assertion — one definition used through the Flask test client and through a real gunicorn."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

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
# Headers that frame the body: a lying Content-Length makes any HTTP server wait for bytes that never
# come, so over real sockets these are fuzzed by the raw chunked test instead.
FRAMING = ("Content-Length", "Transfer-Encoding")


def fuzz(examples: int) -> settings:
    """Deterministic: derandomized, no example database, no deadline (CI machines are noisy). No explain
    phase: it traces every line while replaying a failure, and on input nested thousands deep that takes
    minutes where the shrunk example alone says what broke."""
    return settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                    phases=(Phase.explicit, Phase.generate, Phase.shrink),
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
raw_bodies = st.binary(max_size=300) | st.text(max_size=200).map(str.encode)
methods = st.sampled_from(["POST"] * 6 + ["GET", "PUT", "DELETE", "PATCH"])


@st.composite
def credentials(draw: Any) -> dict[str, str]:
    key, secret = draw(st.sampled_from(PAIRS))
    headers = {}
    if draw(st.booleans()):
        headers["X-App-Key"] = draw(st.sampled_from([key, key.upper(), ""]) | printable)
    if draw(st.booleans()):
        headers["X-App-Secret"] = draw(st.sampled_from([secret, "demo_secret", ""]) | printable)
    return headers


HEADER_NAMES = ("Referer", "X-Forwarded-For", "Origin", "Accept", "Content-Encoding", "Authorization",
                "X-Captchala-Emulator-Fault")
extra_headers = st.dictionaries(st.sampled_from(HEADER_NAMES + FRAMING), printable, max_size=3)
socket_safe_headers = st.dictionaries(st.sampled_from(HEADER_NAMES), printable, max_size=3)
content_types = st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain",
                                 "application/x-www-form-urlencoded", "multipart/form-data",
                                 "multipart/form-data; boundary=x",
                                 "application/yaml", ""]) | printable


def assert_envelope(status: int, data: bytes, what: str) -> None:
    """The answer is {code: int, msg: str, data: object}, never a 5xx (Flask `.data` or requests `.content`)."""
    assert status < 500, f"{what}: HTTP {status} {data[:300]!r}"
    try:
        body = json.loads(data)
    except ValueError:
        raise AssertionError(f"{what}: not JSON: {data[:300]!r}") from None
    assert isinstance(body, dict), f"{what}: {body!r}"
    assert isinstance(body.get("code"), int) and not isinstance(body["code"], bool), f"{what}: {body}"
    assert isinstance(body.get("msg"), str), f"{what}: {body}"
    assert isinstance(body.get("data"), dict), f"{what}: {body}"

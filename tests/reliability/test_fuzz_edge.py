"""Property: deep, huge and odd input never reaches a 5xx, a traceback or a blow-up, on the API
and on the control plane, through the test client (many cases, memory measured) and through a
real gunicorn (real HTTP parsing: chunked bodies, raw bytes). Hypothesis, derandomized.

These strategies generate what issue 10 items 5-7 were: compressed token bombs, JSON and YAML
nested thousands deep, numbers past any float or 64-bit integer, odd types where strings are
expected, names with NUL or a trailing newline, paths as profile names, broken chunk sizes."""

from __future__ import annotations

import base64
import json
import os
import socket
import tracemalloc
import zlib
from urllib.parse import quote, urlsplit

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from emulator.app import create_app
from emulator.settings import Settings
from tests.support.fuzz import fuzz
from tests.support.servers import running_emulator

DEMO = {"X-App-Key": "demo_app", "X-App-Secret": "demo_secret"}
API_POSTS = ("/v1/validate", "/api/validate", "/v1/challenge/verify", "/v1/server/challenge/issue",
             "/v1/moderation/check", "/v1/moderation/text", "/v1/challenge/init", "/v1/challenge/solve",
             "/v1/challenge/offline")
CONTROL_BODIES = (("POST", "/_emulator/pass-tokens"), ("PUT", "/_emulator/clock"), ("POST", "/_emulator/clock/advance"),
                  ("PUT", "/_emulator/profile"))
CONTROL_FIELDS = {"/_emulator/pass-tokens": ("kind", "ttl", "app_key", "action", "risk_score", "uid"),
                  "/_emulator/clock": ("offset",), "/_emulator/clock/advance": ("seconds",),
                  "/_emulator/profile": ("name", "profile")}
CONTROL_QUERIES = ("/_emulator/requests", "/_emulator/requests/wait", "/_emulator/clock/advance", "/_emulator/reset")
MEMORY_CEILING = 8_000_000  # bytes one request may allocate (a 64 KiB body, parsed, is far below)


def bomb(size: int) -> str:
    packed = base64.urlsafe_b64encode(zlib.compress(b'{"pad":"' + b"a" * size + b'"}', 9)).rstrip(b"=").decode()
    return f"pt_.{packed}.c2ln"


depth = st.integers(1, 6000)
deep_json = (depth.map(lambda n: "[" * n + "]" * n) | depth.map(lambda n: '{"a":' * n + "1" + "}" * n)
             | depth.map(lambda n: '{"pass_token":' + "[" * n + "]" * n + "}"))
deep_yaml = (depth.map(lambda n: "[" * n + "]" * n) | depth.map(lambda n: "a:\n" + "- " * n + "x\n")
             | depth.map(lambda n: "{a: " * n + "1" + "}" * n))
huge_numbers = st.sampled_from(["1e400", "2e308", "-1e400", "1" + "0" * 400, "9" * 4000, "-0", "1e-400", "NaN",
                                "Infinity"])
odd_values = (st.sampled_from(["[]", "{}", "null", "true", '""', '"\\u0000"', '"x\\n"', '"../../etc/passwd"',
                               '"/dev/zero"', '"a\\u0000b"']) | huge_numbers
              | st.text(max_size=30).map(json.dumps))
fields = st.sampled_from(["pass_token", "token", "ttl", "kind", "action", "app_key", "client_ip", "seconds",
                          "offset", "name", "profile", "challenge_id", "server_token", "max_uses", "keep_token",
                          "risk_score", "uid", "input", "text"])
odd_objects = st.dictionaries(fields, odd_values, max_size=4).map(
    lambda d: "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in d.items()) + "}")
# Inflating a bomb costs about three times its size: the fixed sizes are well past MEMORY_CEILING.
tokens = ((st.sampled_from([4_000_000, 8_000_000]) | st.integers(10_000, 5_000_000)).map(bomb)
          | st.integers(1, 3000).map(lambda n: "pt_." + base64.urlsafe_b64encode(
              zlib.compress(b"[" * n + b"]" * n)).rstrip(b"=").decode() + ".c2ln"))
token_bodies = tokens.map(lambda t: json.dumps({"pass_token": t, "token": t, "challenge_id": t, "server_token": t}))
huge_bodies = st.integers(60_000, 70_000).map(lambda n: '{"pass_token": "' + "a" * n + '"}')
bodies = deep_json | odd_objects | token_bodies | huge_bodies
numbers_in_query = huge_numbers | st.sampled_from(["99999999999999999999", "-1", "", "abc", "0x10", "1" * 30])
CANARY = "fuzz_leak_canary"  # the only key of a YAML file on disk: an answer that names it leaked the file
PATHS = ("{yaml}", "../../etc/passwd", "/dev/zero", "/etc/passwd", "/", "/tmp")  # {yaml}: that file's path
names = st.sampled_from(["x\n", "a\x00b", "r\r", "ok", *PATHS]) | st.text(max_size=20)


# --- through the test client ---------------------------------------------------------------


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz-edge") / "state.db"
    app = create_app(Settings(store=f"sqlite:///{path}", secret="fuzz-secret", seed=0, quiet=True))
    app.logger.disabled = True
    return app.test_client()


def answered(response, what: str) -> dict:
    assert response.status_code < 500, f"{what}: HTTP {response.status_code} {response.data[:200]!r}"
    body = json.loads(response.data)
    assert isinstance(body, dict) and b"Traceback" not in response.data, what
    return body


def measured(call):
    tracemalloc.start()
    try:
        response = call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_CEILING, f"one request allocated {peak} bytes"
    return response


@fuzz(250)
@given(path=st.sampled_from(API_POSTS), body=bodies, secret=st.sampled_from(["demo_secret", "wrong"]))
def test_api_bodies_get_an_envelope_within_bounded_memory(client, path, body, secret):
    headers = {**DEMO, "X-App-Secret": secret, "Content-Type": "application/json"}
    response = measured(lambda: client.post(path, data=body, headers=headers))
    envelope = answered(response, f"POST {path} {body[:120]!r}")
    assert isinstance(envelope.get("code"), int) and isinstance(envelope.get("data"), dict)


@fuzz(250)
@given(target=st.sampled_from(CONTROL_BODIES), body=bodies | deep_yaml, yaml_text=st.booleans())
def test_control_bodies_get_a_clear_answer(client, target, body, yaml_text):
    method, path = target
    kind = "application/yaml" if yaml_text and path.endswith("/profile") else "application/json"
    try:
        response = measured(lambda: client.open(path, method=method, data=body, headers={"Content-Type": kind}))
        answered(response, f"{method} {path} ({kind}, {len(body)} bytes) {body[:120]!r}")
    finally:
        client.delete("/_emulator/profile")
        client.put("/_emulator/clock", json={"offset": 0})


@fuzz(30)
@given(value=odd_values)
def test_every_control_field_takes_any_value(client, value):
    """Each drawn value goes into every field of every control body: whether `kind: []` on /pass-tokens
    or a 400-digit `seconds` is tried must not hang on one draw landing on that field and endpoint."""
    try:
        for method, path in CONTROL_BODIES:
            for field in CONTROL_FIELDS[path]:
                body = f"{{{json.dumps(field)}: {value}}}"
                response = client.open(path, method=method, data=body, headers={"Content-Type": "application/json"})
                answered(response, f"{method} {path} {body[:120]!r}")
    finally:
        client.delete("/_emulator/profile")
        client.put("/_emulator/clock", json={"offset": 0})


@fuzz(50)
@given(name=st.sampled_from(["after", "limit", "seconds", "timeout", "app_key"]), value=numbers_in_query)
def test_control_queries_get_a_clear_answer(client, name, value):
    for path in CONTROL_QUERIES:  # every query on every endpoint: a drawn path would leave some pairs unseen
        waits = path.endswith("/wait") and name != "timeout"
        query = f"{name}={quote(value)}" + ("&timeout=0" if waits else "")  # elsewhere timeout= is refused
        method = "GET" if path.startswith("/_emulator/requests") else "POST"
        answered(client.open(f"{path}?{query}", method=method), f"{method} {path}?{query}")
    client.put("/_emulator/clock", json={"offset": 0})


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """A YAML file with a canary key, and a FIFO (opening one for reading blocks until a writer comes)."""
    where = tmp_path_factory.mktemp("fuzz-files")
    (where / "leak.yaml").write_text(f"{CANARY}: 1\n")
    os.mkfifo(where / "fifo")
    return {"{yaml}": str(where / "leak.yaml"), "{fifo}": str(where / "fifo")}


def refused_unread(status: int, data: bytes, name: str) -> None:
    """A path as a profile name is refused with a 4xx, and the answer shows nothing of the file."""
    assert CANARY.encode() not in data and b"root:" not in data, f"{name!r} leaked the file: {data[:200]!r}"
    if "/" in name:
        assert 400 <= status < 500, f"{name!r} as a profile name: HTTP {status} {data[:200]!r}"


@fuzz(100)
@given(name=names, as_rule=st.booleans())
def test_profile_names_never_reach_a_file_or_a_5xx(client, files, name, as_rule):
    name = files.get(name, name)
    rule = {"name": name if as_rule else "r", "effect": {"latency_ms": 0}}
    for body in ({"name": name}, {"profile": {"name": "p" if as_rule else name, "rules": [rule]}}):
        response = client.put("/_emulator/profile", json=body)
        answered(response, f"PUT profile {body!r}")
        if "name" in body:
            refused_unread(response.status_code, response.data, name)
        if response.status_code == 200:  # a name that passed is a clean one: it works end to end
            answered(client.post("/v1/validate", json={}, headers=DEMO), f"validate under profile {body!r}")
        client.delete("/_emulator/profile")


@fuzz(60)
@given(token=st.text(max_size=40) | tokens.map(lambda t: t[:2000]))
def test_explain_any_token(client, token):
    answered(measured(lambda: client.get("/_emulator/tokens/" + quote(token, safe=""))), f"explain {token[:60]!r}")


# --- through a real gunicorn ------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    state = tmp_path_factory.mktemp("fuzz-gunicorn")
    with running_emulator("--workers", "2", "--threads", "8", "--store", f"sqlite:///{state / 's.db'}",
                          "--secret", "fuzz") as server:
        yield server


def raw_request(url: str, head: bytes, body: bytes = b"") -> bytes:
    """Send bytes as they are (requests would fix them) and read the whole answer."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head + body)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.") else 0


@pytest.mark.integration
@fuzz(120)
@given(target=st.sampled_from([("POST", p) for p in API_POSTS] + list(CONTROL_BODIES)), body=bodies)
def test_gunicorn_answers_deep_and_huge_bodies_cleanly(served, target, body):
    method, path = target
    try:
        response = requests.request(method, served.url + path, data=body.encode(), timeout=20,
                                    headers={**DEMO, "Content-Type": "application/json"})
        what = f"{method} {path} {body[:120]!r}: {response.status_code} {response.text[:200]}"
        assert response.status_code < 500, what
        assert isinstance(response.json(), dict)
    finally:
        requests.delete(served.url + "/_emulator/profile", timeout=10)


@pytest.mark.integration
@fuzz(60)
@given(path=st.sampled_from(["/v1/validate", "/_emulator/pass-tokens", "/_emulator/profile", "/v1/challenge/init"]),
       size=st.sampled_from([b"zz", b"-1", b"0x10", b"99999999999999999999", b"1;" + b"a" * 9000, b"", b"\xff"]),
       rest=st.sampled_from([b"\r\n{}\r\n0\r\n\r\n", b"\r\n", b"", b"\r\n{\r\n"]))
def test_gunicorn_answers_a_broken_chunked_body_cleanly(served, path, size, rest):
    method = b"PUT" if path.endswith("/profile") else b"POST"
    host = urlsplit(served.url).netloc.encode()
    head = (method + b" " + path.encode() + b" HTTP/1.1\r\nHost: " + host
            + b"\r\nContent-Type: application/json\r\nX-App-Key: demo_app\r\nX-App-Secret: demo_secret\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    answer = raw_request(served.url, head, size + rest)
    assert status_of(answer) < 500 and b"Traceback" not in answer, answer[:300]
    assert requests.get(served.url + "/_emulator/health", timeout=10).status_code == 200


@pytest.mark.integration
@fuzz(20)
@given(name=st.sampled_from(("{fifo}", *PATHS)) | names)
def test_gunicorn_refuses_profile_names_that_are_paths_at_once(served, files, name):
    """Time-bounded (a FIFO or /dev/zero opened by the server would hold the request past the timeout)."""
    name = files.get(name, name)
    try:
        response = requests.put(served.url + "/_emulator/profile", json={"name": name}, timeout=10)
        assert response.status_code < 500 and isinstance(response.json(), dict), response.text[:200]
        refused_unread(response.status_code, response.content, name)
    finally:
        requests.delete(served.url + "/_emulator/profile", timeout=10)

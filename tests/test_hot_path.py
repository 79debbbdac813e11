"""What one validate costs the store: counted calls, never times (issue 11).

The request path reads the rarely changing shared state (clock offset, active profile version)
in one store read, writes exactly one consume and one journal entry, and nothing else."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator.app import create_app
from emulator.runtime import build_runtime
from emulator.settings import Settings
from emulator.store.memory import MemoryStore
from tests.support.apps import DEMO
from tests.support.fuzz import fuzz


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def get(self, key):
        self.calls.append(f"get {key}")
        return super().get(key)

    def get_many(self, keys):
        self.calls.append("get_many " + ",".join(keys))
        return super().get_many(keys)

    def consume(self, token_id, **kw):
        self.calls.append("consume")
        return super().consume(token_id, **kw)

    def consumed(self, token_id, **kw):
        self.calls.append("consumed")
        return super().consumed(token_id, **kw)

    def journal_append(self, entry, *, capacity):
        self.calls.append("journal_append")
        return super().journal_append(entry, capacity=capacity)

    def incr(self, key, amount=1, **kw):
        self.calls.append(f"incr {key}")
        return super().incr(key, amount, **kw)


def test_a_validate_reads_the_shared_state_once_and_writes_one_consume_and_one_entry(fake_time):
    store = CountingStore()
    rt = build_runtime(Settings(store="memory://", secret="s", quiet=True), real_time=fake_time, store=store)
    client = create_app(runtime=rt).test_client()
    first, token = (client.post("/_emulator/pass-tokens", json={"app_key": "demo_app", "action": "login"})
                    .json["pass_token"] for _ in range(2))
    client.post("/v1/validate", json={"pass_token": first}, headers=DEMO)  # the janitor's purge, once per 30 s
    store.calls.clear()
    answer = client.post("/v1/validate", json={"pass_token": token}, headers=DEMO)
    assert answer.json["data"]["valid"] is True
    assert store.calls == ["get_many clock_offset,fault_profile_version", "consume", "journal_append"]


def test_a_success_envelope_is_byte_for_byte_what_flask_jsonify_writes():
    """envelope.ok and token_failure skip Flask's JSON provider on the hot path; clients must not see a difference."""
    from flask import jsonify

    from emulator.errors import ErrorCode, TokenRejected, message
    from emulator.web import envelope

    app = create_app(Settings(store="memory://", secret="s", quiet=True))
    data = {"valid": True, "uid": None, "action": "lögin ✓", "captcha_args": {"risk_score": 10, "referer": "a\"b"}}
    rejected = TokenRejected(ErrorCode.TOKEN_CONSUMED)
    with app.app_context():
        mine, flasks = envelope.ok(data), jsonify(envelope.ok_body(data))
        failure = envelope.token_failure(rejected, {"note": "é"})
        flasks_failure = jsonify({"code": 0, "msg": message(rejected.code),
                                  "data": {"valid": False, "error": "token_consumed", "note": "é"}})
    assert mine.get_data() == flasks.get_data() and failure.get_data() == flasks_failure.get_data()
    assert mine.mimetype == flasks.mimetype == failure.mimetype == "application/json"


def test_the_store_encoding_is_exactly_json_dumps_compact_and_sorted():
    """store.base.dump reuses one C encoder; stored text must not change."""
    import json

    from emulator.store.base import dump

    nested = {"b": 1, "a": [1.5, None, True, "é\"\n"], "c": {"z": 1e16, "y": -0.0, "x": 10**30}}
    values: tuple[object, ...] = (nested, [], {}, "x", 3)
    for value in values:
        assert dump(value) == json.dumps(value, separators=(",", ":"), sort_keys=True)


class CountingInput(io.BytesIO):
    """A WSGI input that counts the calls made to read it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads = 0

    def read(self, size: int | None = -1) -> bytes:
        self.reads += 1
        return super().read(size)

    def readinto(self, buffer) -> int:
        self.reads += 1
        return super().readinto(buffer)


@pytest.fixture
def guarded_streams(monkeypatch) -> list[int]:
    """Counts the guarded input streams werkzeug builds (Request.stream): one per body it reads."""
    import werkzeug.wrappers.request as werkzeug_request

    built: list[int] = []
    real = werkzeug_request.get_input_stream

    def counting(*args, **kwargs):
        built.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(werkzeug_request, "get_input_stream", counting)
    return built


def _post_counting(client, path: str, body: bytes, content_type: str = "application/json") -> tuple[dict, int]:
    stream = CountingInput(body)
    answer = client.post(path, data=body, headers={**DEMO, "Content-Type": content_type},
                         environ_overrides={"wsgi.input": stream})
    return answer.json, stream.reads


def test_a_json_body_with_a_content_length_is_read_in_one_call(fake_time, guarded_streams):
    """The body is read once, straight from the input, and shared by the view, fault matching
    and the journal (werkzeug's guarded stream, its length checks and read loop cost about 24 us)."""
    rt = build_runtime(Settings(store="memory://", secret="s", quiet=True), real_time=fake_time)
    client = create_app(runtime=rt).test_client()
    token = client.post("/_emulator/pass-tokens", json={"app_key": "demo_app", "action": "login"}).json["pass_token"]
    answer, reads = _post_counting(client, "/v1/validate", json.dumps({"pass_token": token}).encode())
    assert answer["data"]["valid"] is True and reads == 1
    answer, reads = _post_counting(client, "/v1/server/challenge/issue", b'{"action":"login"}')
    assert answer["code"] == 0 and reads == 1
    # refused before the body is read: the journal still names the token, from the same single read
    answer, reads = _post_counting(client, "/v1/validate", json.dumps({"pass_token": token}).encode())
    assert answer["data"]["error"] == "token_consumed" and reads == 1
    assert guarded_streams == []


def test_a_body_is_read_once_under_an_active_profile_too(fake_time, guarded_streams):
    rt = build_runtime(Settings(store="memory://", secret="s", quiet=True), real_time=fake_time)
    client = create_app(runtime=rt).test_client()
    rule = {"name": "slow", "match": {"endpoint": ["issue"], "action": "login"}, "effect": {"latency_ms": 1}}
    assert client.put("/_emulator/profile", json={"profile": {"name": "p", "rules": [rule]}}).status_code == 200
    answer, reads = _post_counting(client, "/v1/server/challenge/issue", b'{"action":"login"}')
    assert answer["code"] == 0 and reads == 1 and guarded_streams == []


def test_a_form_body_still_parses_through_werkzeug():
    app = create_app(Settings(store="memory://", secret="s", quiet=True))
    answer, _ = _post_counting(app.test_client(), "/v1/server/challenge/issue", b"action=login&ttl=60",
                               "application/x-www-form-urlencoded")
    assert answer["code"] == 0 and answer["data"]["expires_in"] == 60


def test_an_unreadable_body_is_one_clear_invalid_request_for_view_and_journal():
    class Broken(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            raise OSError("connection reset by peer")

    app = create_app(Settings(store="memory://", secret="s", quiet=True))
    client = app.test_client()
    answer = client.post("/v1/validate", data=b'{"pass_token":"pt_x"}', headers=DEMO,
                         environ_overrides={"wsgi.input": Broken(b"")})
    assert answer.status_code == 200 and answer.json["data"]["error"] == "invalid_request"
    assert answer.headers["X-Captchala-Emulator-Reason"] == "body could not be read: OSError"
    entry = client.get("/_emulator/requests").json["requests"][-1]
    assert entry["code"] == "invalid_request" and entry["token_fp"] is None


def test_a_body_shorter_than_its_content_length_is_refused_and_consumes_nothing(fake_time):
    """A client that announces more than it sends and half-closes: the server's input ends early.
    Taking the bytes that came as the whole body would act on a request the client never finished."""
    rt = build_runtime(Settings(store="memory://", secret="s", quiet=True), real_time=fake_time)
    client = create_app(runtime=rt).test_client()
    token = client.post("/_emulator/pass-tokens", json={"app_key": "demo_app", "action": "login"}).json["pass_token"]
    body = json.dumps({"pass_token": token}).encode()
    answer = client.post("/v1/validate", data=body, headers={**DEMO, "Content-Type": "application/json"},
                         environ_overrides={"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body) + 50)})
    assert answer.json["data"]["error"] == "invalid_request"
    assert answer.headers["X-Captchala-Emulator-Reason"] == (
        f"body ended after {len(body)} of the {len(body) + 50} bytes its Content-Length announced")
    assert client.get("/_emulator/requests").json["requests"][-1]["code"] == "invalid_request"
    assert client.post("/v1/validate", json={"pass_token": token}, headers=DEMO).json["data"]["valid"] is True


def test_a_body_that_arrives_in_pieces_is_read_whole():
    class Pieces(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            return super().read(min(5, size if size is not None and size >= 0 else 5))

    app = create_app(Settings(store="memory://", secret="s", quiet=True))
    body = b'{"action":"login","ttl":60}'
    answer = app.test_client().post("/v1/server/challenge/issue", data=body,
                                    headers={**DEMO, "Content-Type": "application/json"},
                                    environ_overrides={"wsgi.input": Pieces(body)})
    assert answer.json["code"] == 0 and answer.json["data"]["expires_in"] == 60


@pytest.fixture
def proxy_lookups() -> Iterator[dict[str, int]]:
    """Counts, per name, the lookups through Flask's context-local proxies (each costs a context
    variable read and a few frames)."""
    import flask.globals

    counts: dict[str, int] = {}
    saved = []
    for name in ("request", "current_app", "g", "session", "request_ctx", "app_ctx"):
        proxy = vars(flask.globals).get(name)
        if proxy is None:
            continue
        real = object.__getattribute__(proxy, "_get_current_object")

        def counting(real=real, name=name):
            counts[name] = counts.get(name, 0) + 1
            return real()

        saved.append((proxy, real))
        object.__setattr__(proxy, "_get_current_object", counting)
    yield counts
    for proxy, real in saved:
        object.__setattr__(proxy, "_get_current_object", real)


def test_an_api_request_looks_up_the_request_and_the_app_once_each(fake_time, proxy_lookups):
    """The view gets the request and the runtime once and passes them down (`request.x` and
    `current_app.x` are one proxy lookup each; the hot path made about ten)."""
    from flask import Response

    rt = build_runtime(Settings(store="memory://", secret="s", quiet=True), real_time=fake_time)
    app = create_app(runtime=rt)
    app.add_url_rule("/probe", "probe", lambda: Response(b""), methods=["POST"])
    client = app.test_client()
    token = client.post("/_emulator/pass-tokens", json={"app_key": "demo_app", "action": "login"}).json["pass_token"]
    proxy_lookups.clear()
    client.post("/probe", json={})
    flasks_own = dict(proxy_lookups)
    for path, body in (("/v1/validate", {"pass_token": token}), ("/v1/server/challenge/issue", {"action": "login"}),
                       ("/v1/validate", {"pass_token": token})):
        proxy_lookups.clear()
        client.post(path, json=body, headers=DEMO)
        ours = {name: n - flasks_own.get(name, 0) for name, n in proxy_lookups.items()}
        assert {name: n for name, n in ours.items() if n} == {"request": 1, "current_app": 1}, path


ROUND_MS_CASES = (0.0, -0.0, 0.0625, -0.0625, 2.675, 0.0005, -0.0004, 1_800_000_000.0625, 1_800_000_000.123,
                  1_799_999_999.9995, 2.0**33, 2.0**33 - 0.0005, 1e300, -1e300, float("inf"), 5e-324)


@fuzz(3000)
@given(x=st.floats(allow_nan=False, allow_infinity=False)
       | st.integers(-(2**45), 2**45).map(lambda n: n / 2000)  # exact and near ties at every magnitude
       | st.integers(1_700_000_000_000_000, 1_900_000_000_000_000).map(lambda us: us / 1e6)  # timestamps
       | st.sampled_from(ROUND_MS_CASES))
def test_round_ms_is_exactly_pythons_round_to_three_digits(x):
    """The journal's virtual_ts and a token's iat/exp are round(x, 3); round converts through decimal
    text (about 7 000 instructions for a timestamp), round_ms only where the answer could differ."""
    from emulator.domain.tokens import round_ms

    mine, pythons = round_ms(x), round(x, 3)
    assert mine == pythons and math.copysign(1.0, mine) == math.copysign(1.0, pythons), (x, mine, pythons)


def test_round_ms_of_nan_is_nan():
    from emulator.domain.tokens import round_ms

    assert math.isnan(round_ms(float("nan")))


def test_the_janitor_runs_after_any_request_without_a_flask_teardown_function(fake_time):
    """A teardown function costs every request Flask's dispatch to it (about 7 500 instructions):
    the janitor wraps the WSGI app instead, and still gets its turn after every kind of request."""
    purges: list[float] = []

    class PurgeCountingStore(MemoryStore):
        def purge(self, now):
            purges.append(now)
            return super().purge(now)

    rt = build_runtime(Settings(store="memory://", secret="s", quiet=True), real_time=fake_time,
                       store=PurgeCountingStore())
    app = create_app(runtime=rt)
    assert not any(app.teardown_request_funcs.values())
    client = app.test_client()
    for request in (lambda: client.get("/_emulator/health"), lambda: client.post("/v1/validate", headers=DEMO),
                    lambda: client.get("/no-such-page")):
        request()
        fake_time.advance(31)  # the janitor purges at most once per 30 s
    assert len(purges) == 3


def test_the_reason_header_is_there_once_with_or_without_a_fault_setting_it(fake_time):
    """A view's own answer gets the reason appended (werkzeug's replacing set costs twice as much);
    a fault's canned answer may carry a header of that name from the profile: it is replaced."""
    rt = build_runtime(Settings(store="memory://", secret="s", quiet=True), real_time=fake_time)
    client = create_app(runtime=rt).test_client()
    answer = client.post("/v1/server/challenge/issue", json={"action": "login"}, headers=DEMO)
    assert answer.headers.getlist("X-Captchala-Emulator-Reason") == [
        "issued sct_ for action 'login', 1 use(s), ttl 300 s"]
    rule = {"name": "canned", "match": {"endpoint": "issue"},
            "effect": {"status": 503, "headers": {"X-Captchala-Emulator-Reason": "from the profile"}}}
    assert client.put("/_emulator/profile", json={"profile": {"name": "p", "rules": [rule]}}).status_code == 200
    answer = client.post("/v1/server/challenge/issue", json={"action": "login"}, headers=DEMO)
    assert answer.status_code == 503
    assert answer.headers.getlist("X-Captchala-Emulator-Reason") == [
        "fault rule p/canned: HTTP 503 with a json body"]


def test_with_no_profile_active_the_fault_state_is_not_consulted(fake_time, monkeypatch):
    """The request's moment already says no profile is active: no decision to make (about 3 000
    instructions of closures and calls); with one active, every request is decided."""
    rt = build_runtime(Settings(store="memory://", secret="s", quiet=True), real_time=fake_time)
    client = create_app(runtime=rt).test_client()
    decided: list[str] = []
    real = rt.faults.decide

    def counting(endpoint, *args, **kwargs):
        decided.append(endpoint)
        return real(endpoint, *args, **kwargs)

    monkeypatch.setattr(rt.faults, "decide", counting)
    client.post("/v1/server/challenge/issue", json={"action": "login"}, headers=DEMO)
    assert decided == []
    rule = {"name": "slow", "match": {"endpoint": "validate"}, "effect": {"latency_ms": 1}}
    assert client.put("/_emulator/profile", json={"profile": {"name": "p", "rules": [rule]}}).status_code == 200
    client.post("/v1/server/challenge/issue", json={"action": "login"}, headers=DEMO)
    assert decided == ["issue"]
    assert client.delete("/_emulator/profile").status_code == 200
    client.post("/v1/server/challenge/issue", json={"action": "login"}, headers=DEMO)
    assert decided == ["issue"]


def test_the_callers_of_one_peer_address_are_one_shared_value():
    """No IP parsing or Caller built per request for a peer seen before (about 4 000 instructions)."""
    from emulator.web.context import EXTENSION, caller, current_request

    app = create_app(Settings(store="memory://", secret="s", quiet=True))
    callers = []
    for _ in range(2):
        with app.test_request_context("/v1/validate", method="POST",
                                      environ_base={"REMOTE_ADDR": "::ffff:10.1.2.3"}):
            callers.append(caller(app.extensions[EXTENSION], current_request()))
    assert callers[0].ip == "10.1.2.3" and callers[0] is callers[1]


def test_an_api_request_reads_its_headers_from_the_environ(fake_time, monkeypatch):
    """No lookup through werkzeug's header view on the hot path (each `headers.get` normalises the
    name and builds the environ key): credentials come straight from the WSGI environ."""
    from werkzeug.datastructures import EnvironHeaders

    rt = build_runtime(Settings(store="memory://", secret="s", quiet=True), real_time=fake_time)
    client = create_app(runtime=rt).test_client()
    token = client.post("/_emulator/pass-tokens", json={"app_key": "demo_app", "action": "login"}).json["pass_token"]
    looked_up: list[str] = []
    real = EnvironHeaders._get_key

    def counting(self, key):
        looked_up.append(key)
        return real(self, key)

    monkeypatch.setattr(EnvironHeaders, "_get_key", counting)
    assert client.post("/v1/validate", json={"pass_token": token}, headers=DEMO).json["data"]["valid"] is True
    assert client.post("/v1/server/challenge/issue", json={"action": "login"}, headers=DEMO).json["code"] == 0
    assert looked_up == []


def test_a_body_that_breaks_under_a_reset_fault_is_still_answered_and_journaled():
    """The reset fault drains the body first; a body that cannot be read must not escape as an
    error there (drain_body never raises), whichever reader met the break first."""
    class Broken(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            raise OSError("connection reset by peer")

    app = create_app(Settings(store="memory://", secret="s", quiet=True))
    client = app.test_client()
    rule = {"name": "reset", "match": {"endpoint": "validate"}, "effect": {"connection": "reset"}}
    assert client.put("/_emulator/profile", json={"profile": {"name": "p", "rules": [rule]}}).status_code == 200
    answer = client.post("/v1/validate", data=b'{"pass_token":"pt_x"}', headers=DEMO,
                         environ_overrides={"wsgi.input": Broken(b"")})
    assert answer.status_code == 502
    entry = client.get("/_emulator/requests").json["requests"][-1]
    assert entry["code"] == "connection_reset" and entry["status"] == 502


@pytest.mark.parametrize("length", ["9" * 5000, "18446744073709551617", "1e3", "+20", " 20", "٢٠"])
def test_an_odd_content_length_is_left_to_werkzeug_as_before(length):
    """Only plain short digit strings take the one-read path: werkzeug reads any other value as 0
    (5 000 digits would be a ValueError from int() itself: never a 500)."""
    app = create_app(Settings(store="memory://", secret="s", quiet=True))
    answer = app.test_client().post("/v1/validate", data=b'{"pass_token":"pt_x"}', headers=DEMO,
                                    environ_overrides={"CONTENT_LENGTH": length})
    assert answer.status_code == 200 and answer.json["data"]["error"] in ("empty_token", "invalid_token",
                                                                          "invalid_request")


def _wsgi_answer(response, method: str = "POST") -> tuple[str, list[tuple[str, str]], bytes]:
    got: dict = {}

    def start_response(status, headers, exc_info=None):
        got.update(status=status, headers=headers)

    body = b"".join(response({"REQUEST_METHOD": method, "wsgi.url_scheme": "http", "SERVER_NAME": "h",
                              "SERVER_PORT": "80", "PATH_INFO": "/"}, start_response))
    return got["status"], got["headers"], body


def test_an_envelope_answer_is_handed_to_the_server_as_werkzeug_would_without_its_header_pass(monkeypatch):
    """envelope.Answer skips werkzeug's per-response header copy and scan (about 46 000 instructions):
    the server must get the same status line, headers and bytes; a HEAD or a 204 still goes through
    werkzeug, which empties the body."""
    from flask import Response

    from emulator.web import envelope

    app = create_app(Settings(store="memory://", secret="s", quiet=True))
    with app.app_context():
        mine = envelope.ok({"valid": True, "note": "é"})
        envelope.with_reason(mine, "why", fresh=True)
        plain = Response(mine.get_data(), headers=list(mine.headers.items()))
    assert _wsgi_answer(mine) == _wsgi_answer(plain)
    scans: list[int] = []
    real = Response.get_wsgi_headers

    def counted(self, environ):
        scans.append(1)
        return real(self, environ)

    monkeypatch.setattr(Response, "get_wsgi_headers", counted)
    _wsgi_answer(mine)
    assert scans == []
    status, headers, body = _wsgi_answer(mine, "HEAD")
    assert (status, body, scans) == ("200 OK", b"", [1])
    assert ("Content-Length", str(len(mine.get_data()))) in headers
    mine.status_code = 204
    assert _wsgi_answer(mine)[2] == b"" and len(scans) == 2
    mine.status_code, mine.response = 200, iter([b"streamed"])
    assert _wsgi_answer(mine)[2] == b"streamed" and len(scans) == 3


def test_a_form_body_shorter_than_its_content_length_says_so():
    """werkzeug reads form and chunked bodies and calls an early end a disconnect: the answer names
    what happened (before: a bare bad request, the same for every broken read)."""
    client = create_app(Settings(store="memory://", secret="s", quiet=True)).test_client()
    body = b"action=login"
    answer = client.post("/v1/server/challenge/issue", headers=DEMO, environ_overrides={
        "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body) + 10),
        "CONTENT_TYPE": "application/x-www-form-urlencoded"})
    assert answer.json["error"] == "invalid_request"
    assert answer.headers["X-Captchala-Emulator-Reason"] == (
        f"body ended before the {len(body) + 10} bytes its Content-Length announced")

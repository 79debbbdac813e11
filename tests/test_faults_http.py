"""Fault rules applied to real requests: through the Flask test client with an injected sleep,
and through a real werkzeug thread server for the socket-level faults (what a client sees)."""

from __future__ import annotations

import http.client
import json
import socket

import pytest
import requests

from emulator.app import create_app
from emulator.runtime import build_runtime
from emulator.server import ThreadServer
from emulator.settings import Settings
from emulator.web.faults import FAULT_HEADER

DEMO = {"X-App-Key": "demo_app", "X-App-Secret": "demo_secret"}


def one_rule(effect: dict, match: dict | None = None, when: dict | None = None, **top) -> dict:
    rule = {"name": "r", "effect": effect}
    if match is not None:
        rule["match"] = match
    if when is not None:
        rule["when"] = when
    return {"profile": {"name": "t", "rules": [rule], **top}}


class FakeSleep:
    """Records the delays instead of waiting; `on_sleep` lets a test look at state mid-request."""

    def __init__(self):
        self.calls: list[float] = []
        self.on_sleep = None

    def __call__(self, seconds: float) -> None:
        self.calls.append(round(seconds, 6))
        if self.on_sleep:
            self.on_sleep()


@pytest.fixture
def sleep():
    return FakeSleep()


@pytest.fixture
def rt(settings, fake_time, sleep):
    runtime = build_runtime(settings, real_time=fake_time, sleep=sleep)
    yield runtime
    runtime.store.close()


@pytest.fixture
def c(rt):
    return create_app(runtime=rt).test_client()


def use(client, body) -> dict:
    r = client.put("/_emulator/profile", json=body)
    assert r.status_code == 200, r.json
    return r.json


def mint(client, **claims) -> str:
    r = client.post("/_emulator/pass-tokens", json={"app_key": "demo_app", "action": "login", **claims})
    assert r.status_code == 201, r.json
    return r.json["pass_token"]


def journal(client, **filters) -> list[dict]:
    return client.get("/_emulator/requests", query_string=filters).json["requests"]


def solve(client, app_key="demo_app"):
    init = client.post("/v1/challenge/init", json={"app_key": app_key, "action": "login"})
    assert init.json["code"] == 0, init.json
    return client.post("/v1/challenge/solve", json={"challenge_id": init.json["data"]["challenge_id"]})


# --- the control plane -----------------------------------------------------------------


def test_put_get_delete_profile_and_health(c):
    assert c.get("/_emulator/profile").json == {"active": False, "name": None}
    shown = use(c, {"name": "flaky-validate"})
    assert (shown["active"], shown["name"], shown["seed"], shown["source"]) == (True, "flaky-validate", 42,
                                                                                "flaky-validate")
    assert [r["name"] for r in shown["rules"]] == ["bad-gateway", "reset"]
    assert c.get("/_emulator/health").json["profile"] == "flaky-validate"
    assert c.delete("/_emulator/profile").json["active"] is False
    assert c.get("/_emulator/health").json["profile"] is None


def test_put_yaml_text(c):
    r = c.put("/_emulator/profile", data="name: y\nrules: [{name: slow, effect: {latency_ms: 5}}]",
              content_type="application/yaml")
    assert r.status_code == 200 and r.json["name"] == "y"


def test_a_bad_profile_is_refused_with_key_path_and_the_old_one_stays(c):
    use(c, {"name": "main-down"})
    r = c.put("/_emulator/profile", json={"profile": {"rules": [{"name": "x", "effect": {
        "latency_ms": {"median": 120, "p99": 90, "max": 3000}}}]}})
    assert r.status_code == 422
    assert r.json["error"] == "invalid_profile"
    assert (r.json["path"], r.json["problem"]) == ("rules[0].effect.latency_ms.p99", "must be >= median (120)")
    assert r.json["message"] == "PUT /_emulator/profile: rules[0].effect.latency_ms.p99: must be >= median (120)"
    for body, status in (({"name": "nope"}, 404), ({"name": 3}, 422), ({"profile": {}, "x": 1}, 422),
                         ({"profile": "rules: []"}, 422)):
        assert c.put("/_emulator/profile", json=body).status_code == status, body
    bad_yaml = c.put("/_emulator/profile", data="rules: [", content_type="text/yaml")
    assert bad_yaml.status_code == 422 and "invalid YAML" in bad_yaml.json["problem"]
    assert c.put("/_emulator/profile", data="{not json", content_type="application/json").status_code == 400
    assert c.get("/_emulator/profile").json["name"] == "main-down"


def test_built_in_profiles_are_listed_with_what_they_reproduce(c):
    listed = {p["name"]: p["description"] for p in c.get("/_emulator/profiles").json["profiles"]}
    assert "main-down" in listed and "backup" in listed["main-down"]


def test_the_profile_routes_obey_the_admin_token(tmp_path):
    s = Settings(store=f"sqlite:///{tmp_path / 's.db'}", secret="x", admin_token="sesame", quiet=True)
    client = create_app(s).test_client()
    assert client.put("/_emulator/profile", json={"name": "main-down"}).status_code == 401
    ok = client.put("/_emulator/profile", json={"name": "main-down"}, headers={"Authorization": "Bearer sesame"})
    assert ok.status_code == 200


def test_create_app_applies_settings_profile_to_a_fresh_store(tmp_path):
    s = Settings(store=f"sqlite:///{tmp_path / 's.db'}", secret="x", profile="token-reused", quiet=True)
    assert create_app(s).test_client().get("/_emulator/profile").json["name"] == "token-reused"


# --- effects, through the test client ----------------------------------------------------


def test_latency_goes_through_the_injected_sleep_and_is_journaled(c, sleep):
    use(c, one_rule({"latency_ms": 1500}, {"endpoint": "validate"}))
    r = c.post("/v1/validate", json={"pass_token": mint(c)}, headers=DEMO)
    assert r.json["data"]["valid"] is True
    assert r.headers[FAULT_HEADER] == "t/r"
    assert sleep.calls == [1.5]
    [entry] = journal(c, endpoint="validate")
    assert (entry["fault"], entry["fault_n"], entry["fault_latency_ms"]) == ("t/r", 1, 1500)


def test_processed_applies_latency_after_the_request_was_handled(c, rt, sleep):
    use(c, one_rule({"latency_ms": 100, "processed": True}, {"endpoint": "validate"}))
    token = mint(c)
    token_id = rt.signer.peek(token)[1]["jti"]
    seen = []
    sleep.on_sleep = lambda: seen.append(rt.store.consumed(token_id) is not None)
    assert c.post("/v1/validate", json={"pass_token": token}, headers=DEMO).json["data"]["valid"] is True
    assert seen == [True]  # the token was already spent while the answer was held back


@pytest.mark.parametrize(("body", "content_type", "check"), [
    ("json", "application/json", lambda r: r.json == {"code": 503, "msg": "service temporarily unavailable",
                                                      "error": "service_unavailable",
                                                      "data": {"error": "service_unavailable", "valid": False}}),
    ("html", "text/html", lambda r: b"<title>503 Service Temporarily Unavailable</title>" in r.data
     and b"nginx" in r.data),
    ("empty", None, lambda r: r.data == b""),
    ("upstream says no", "text/plain", lambda r: r.data == b"upstream says no"),
])
def test_status_with_each_body(c, body, content_type, check):
    use(c, one_rule({"status": 503, "body": body, "headers": {"X-Upstream": "lb-3"}}, {"endpoint": "validate"}))
    r = c.post("/v1/validate", json={"pass_token": mint(c)}, headers=DEMO)
    assert r.status_code == 503 and r.headers["X-Upstream"] == "lb-3" and r.headers[FAULT_HEADER] == "t/r"
    if content_type:
        assert r.mimetype == content_type
    assert check(r)
    [entry] = journal(c, endpoint="validate")
    assert (entry["status"], entry["outcome"], entry["code"], entry["fault"]) == (503, "fault", "http_503", "t/r")
    assert entry["app_key"] == "demo_app"


def test_error_is_an_api_error_in_the_real_envelope_with_a_retry_hint(c):
    use(c, one_rule({"error": "rate_limit_exceeded", "retry_after": 30}, {"endpoint": ["validate", "issue"]}))
    for path, body in (("/v1/validate", {"pass_token": mint(c)}), ("/v1/server/challenge/issue", {"action": "login"})):
        r = c.post(path, json=body, headers=DEMO)
        assert r.status_code == 200 and r.headers["Retry-After"] == "30"
        assert (r.json["code"], r.json["error"], r.json["data"]["error"], r.json["data"]["retry_after"]) == (
            429, "rate_limit_exceeded", "rate_limit_exceeded", 30)
    use(c, one_rule({"error": "rate_limit_exceeded"}, {"endpoint": "validate"}))
    assert c.post("/v1/validate", json={"pass_token": "x"}, headers=DEMO).headers["Retry-After"] == "1"


def test_error_on_the_widget_endpoints_reaches_on_error(c):
    use(c, one_rule({"error": "session_expired"}, {"endpoint": "challenge_init"}))
    r = c.post("/v1/challenge/init", json={"app_key": "demo_app", "action": "login"})
    assert r.json["code"] != 0 and r.json["data"]["error"] == "session_expired"
    assert r.headers[FAULT_HEADER] == "t/r"


@pytest.mark.parametrize("result", ["token_expired", "token_consumed", "invalid_token", "binding_mismatch"])
def test_token_result_forces_validate_answer(c, result):
    use(c, one_rule({"token_result": result}))
    token = mint(c)
    for path in ("/v1/validate", "/api/validate"):
        r = c.post(path, json={"pass_token": token}, headers=DEMO)
        assert r.json == {"code": 0, "msg": r.json["msg"], "data": {"valid": False, "error": result}}
    entry = journal(c, endpoint="validate")[-1]
    assert entry["fault"] == "t/r" and "forced" in entry["reason"]
    c.delete("/_emulator/profile")
    assert c.post("/v1/validate", json={"pass_token": token}, headers=DEMO).json["data"]["valid"] is True


def test_degraded_makes_the_widget_hand_out_dg_tokens(c):
    use(c, {"name": "degraded-quota"})
    token = solve(c).json["data"]["pass_token"]
    assert token.startswith("dg_")
    data = c.post("/v1/validate", json={"pass_token": token}, headers=DEMO).json["data"]
    assert (data["valid"], data["degraded"], data["reason"]) == (False, True, "quota_exhausted")


def test_main_down_sends_the_widget_to_the_backup(c):
    use(c, {"name": "main-down"})
    for method, path, body in (("post", "/v1/validate", {"pass_token": "x"}),
                               ("post", "/v1/server/challenge/issue", {"action": "login"}),
                               ("post", "/v1/challenge/init", {"app_key": "demo_app", "action": "login"}),
                               ("post", "/v1/moderation/text", {"text": "hi"})):
        r = getattr(c, method)(path, json=body, headers=DEMO)
        assert r.status_code == 503 and r.mimetype == "text/html", path
        assert r.headers[FAULT_HEADER] == "main-down/main-api-down"
    assert c.get("/captchala-loader.js").status_code == 200  # the CDN is not the main API
    offline = c.post("/v1/challenge/offline", json={"app_key": "demo_app", "action": "login"}).json["data"]
    assert offline["pass_token"].startswith("offline_")
    data = c.post("/api/validate", json={"pass_token": offline["pass_token"]}, headers=DEMO).json["data"]
    assert data["valid"] is True


def test_clock_skew_shifts_virtual_now_for_matching_requests(c):
    token = mint(c)
    use(c, one_rule({"clock_skew_s": 3600}))
    r = c.post("/v1/validate", json={"pass_token": token}, headers=DEMO)
    assert r.json["data"]["error"] == "token_expired"
    assert "ago" in r.headers["X-Captchala-Emulator-Reason"]  # expired for real, not forced
    use(c, one_rule({"clock_skew_s": -30}))
    assert c.post("/v1/validate", json={"pass_token": token}, headers=DEMO).json["data"]["valid"] is True


def test_only_matching_requests_are_touched(c):
    use(c, one_rule({"status": 500}, {"endpoint": "validate", "action": "pay"}))
    login = c.post("/v1/validate", json={"pass_token": mint(c)}, headers=DEMO)
    pay = c.post("/v1/validate", json={"pass_token": mint(c, action="pay")}, headers=DEMO)
    assert FAULT_HEADER not in login.headers and login.json["data"]["valid"] is True
    assert pay.status_code == 500 and pay.headers[FAULT_HEADER] == "t/r"
    assert [e["fault"] for e in journal(c, endpoint="validate")] == [None, "t/r"]


def test_a_solve_rule_matches_the_app_and_action_inside_the_challenge(c):
    """challenge_solve bodies carry only the challenge id: the rule must see inside it."""
    use(c, one_rule({"status": 503}, {"endpoint": "challenge_solve", "app_key": "demo_app", "action": "pay"}))

    def solve(app_key, action):
        init = c.post("/v1/challenge/init", json={"app_key": app_key, "action": action}).json["data"]
        return c.post("/v1/challenge/solve", json={"challenge_id": init["challenge_id"]})

    hit = solve("demo_app", "pay")
    assert hit.status_code == 503 and hit.headers[FAULT_HEADER] == "t/r"
    for app_key, action in (("demo_app", "login"), ("auto_pass_app", "pay")):
        assert FAULT_HEADER not in solve(app_key, action).headers


def test_first_two_fail_then_succeed(c):
    use(c, one_rule({"status": 503}, {"endpoint": "validate"}, {"first": 2}))
    statuses = [c.post("/v1/validate", json={"pass_token": mint(c)}, headers=DEMO).status_code for _ in range(4)]
    assert statuses == [503, 503, 200, 200]
    c.post("/_emulator/reset")  # a full reset clears the fault counters
    assert c.post("/v1/validate", json={"pass_token": mint(c)}, headers=DEMO).status_code == 503


def test_profile_ttl_by_the_virtual_clock(c):
    use(c, {"name": "validate-503"})
    assert c.post("/v1/validate", json={"pass_token": mint(c)}, headers=DEMO).status_code == 503
    c.post("/_emulator/clock/advance", json={"seconds": 600})
    assert c.post("/v1/validate", json={"pass_token": mint(c)}, headers=DEMO).status_code == 200
    assert c.get("/_emulator/profile").json["expired"] is True


def test_connection_faults_without_a_raw_socket_fall_back_to_http(c, sleep):
    use(c, one_rule({"connection": {"kind": "hang", "max_s": 7}}, {"endpoint": "validate"}))
    r = c.post("/v1/validate", json={"pass_token": "x"}, headers=DEMO)
    assert r.status_code == 504 and sleep.calls == [7]
    use(c, one_rule({"connection": "reset"}, {"endpoint": "validate"}))
    assert c.post("/v1/validate", json={"pass_token": "x"}, headers=DEMO).status_code == 502


def test_the_loader_obeys_a_profile(c):
    use(c, {"name": "loader-404"})
    r = c.get("/captchala-loader.js")
    assert r.status_code == 404 and r.mimetype == "text/html"
    assert r.headers[FAULT_HEADER] == "loader-404/loader-not-found"
    assert c.get("/captchala.js").status_code == 200


# --- quotas as real state ---------------------------------------------------------------


@pytest.fixture
def limited(tmp_path, fake_time, sleep):
    apps = tmp_path / "apps.yaml"
    apps.write_text("- {app_key: tiny_app, app_secret: tiny_secret, rate_limit: 3}\n")
    s = Settings(store=f"sqlite:///{tmp_path / 'l.db'}", secret="x", apps=str(apps), quiet=True)
    runtime = build_runtime(s, real_time=fake_time, sleep=sleep)
    yield create_app(runtime=runtime).test_client()
    runtime.store.close()


def test_rate_limit_is_counted_per_app_and_answers_with_a_retry_hint(limited):
    tiny = {"X-App-Key": "tiny_app", "X-App-Secret": "tiny_secret"}
    codes = [limited.post("/v1/validate", json={"pass_token": "x"}, headers=tiny).json["code"] for _ in range(3)]
    assert codes == [0, 0, 0]
    refused = limited.post("/v1/server/challenge/issue", json={"action": "login"}, headers=tiny)  # one budget
    assert refused.json["code"] == 429 and refused.json["error"] == "rate_limit_exceeded"
    wait = refused.json["data"]["retry_after"]
    assert refused.headers["Retry-After"] == str(wait) and 1 <= wait <= 120
    assert limited.post("/v1/validate", json={"pass_token": "x"}, headers=DEMO).json["code"] == 0  # other apps
    assert limited.post("/api/validate", json={"pass_token": "x"}, headers=tiny).json["code"] == 0  # the backup
    limited.post("/_emulator/clock/advance", json={"seconds": wait - 1})
    assert limited.post("/v1/validate", json={"pass_token": "x"}, headers=tiny).json["code"] == 429
    limited.post("/_emulator/clock/advance", json={"seconds": 1})
    assert limited.post("/v1/validate", json={"pass_token": "x"}, headers=tiny).json["code"] == 0
    limited.post("/_emulator/reset", query_string={"app_key": "tiny_app"})
    assert [limited.post("/v1/validate", json={"pass_token": "x"}, headers=tiny).json["code"]
            for _ in range(3)] == [0, 0, 0]


# --- socket-level faults on a real server: what a client sees ---------------------------------


@pytest.fixture
def served(tmp_path):
    s = Settings(store=f"sqlite:///{tmp_path / 'real.db'}", secret="x", quiet=True)
    server = ThreadServer(create_app(s)).start()
    yield server
    server.stop()


def put(server, body) -> None:
    r = requests.put(server.url + "/_emulator/profile", json=body, timeout=5)
    assert r.status_code == 200, r.text


def real_mint(server, **claims) -> str:
    r = requests.post(server.url + "/_emulator/pass-tokens", json={"app_key": "demo_app", **claims}, timeout=5)
    return r.json()["pass_token"]


def raw_validate(server, token: str, timeout: float = 5) -> socket.socket:
    body = json.dumps({"pass_token": token}).encode()
    sock = socket.create_connection((server.host, server.port), timeout=timeout)
    sock.sendall(b"POST /v1/validate HTTP/1.1\r\nHost: x\r\nX-App-Key: demo_app\r\nX-App-Secret: demo_secret\r\n"
                 b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    return sock


def wait_entry(server, **filters) -> dict:
    r = requests.get(server.url + "/_emulator/requests/wait", params={"timeout": 10, **filters}, timeout=15)
    return r.json()["requests"][-1]


def test_reset_is_a_tcp_rst(served):
    put(served, one_rule({"connection": "reset"}, {"endpoint": "validate"}))
    sock = raw_validate(served, real_mint(served))
    with pytest.raises(ConnectionResetError):
        sock.recv(1024)  # not an empty read (FIN): the peer reset the connection
    sock.close()
    with pytest.raises(requests.ConnectionError, match="reset by peer"):
        requests.post(served.url + "/v1/validate", json={"pass_token": "x"}, headers=DEMO, timeout=5)
    assert wait_entry(served, endpoint="validate", code="connection_reset")["status"] == 444


def test_hang_holds_until_the_client_gives_up_and_then_lets_go(served):
    put(served, one_rule({"connection": {"kind": "hang", "max_s": 60}}, {"endpoint": "validate"}))
    with pytest.raises(requests.ReadTimeout):
        requests.post(served.url + "/v1/validate", json={"pass_token": "x"}, headers=DEMO, timeout=0.5)
    entry = wait_entry(served, endpoint="validate", code="connection_hang")  # written once the server let go
    assert "until the client gave up" in entry["reason"] and entry["held_s"] < 60


def test_hang_gives_up_after_max_s_with_no_answer(served):
    put(served, one_rule({"connection": {"kind": "hang", "max_s": 0.3}}, {"endpoint": "validate"}))
    sock = raw_validate(served, "x")
    assert sock.recv(1024) == b""  # closed (FIN) without a single byte of answer
    sock.close()
    assert "max_s 0.3 s" in wait_entry(served, endpoint="validate", code="connection_hang")["reason"]


def test_truncated_body_announces_more_than_it_sends(served):
    put(served, one_rule({"connection": "truncated_body"}, {"endpoint": "validate"}))
    sock = raw_validate(served, real_mint(served))
    raw = b""
    while chunk := sock.recv(65536):
        raw += chunk
    sock.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    length = int(next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1])
    assert b" 200 " in head.split(b"\r\n")[0] and 0 < len(body) < length
    conn = http.client.HTTPConnection(served.host, served.port, timeout=5)
    conn.request("POST", "/v1/validate", json.dumps({"pass_token": "x"}), {**DEMO, "Content-Type": "application/json"})
    with pytest.raises(http.client.IncompleteRead):
        conn.getresponse().read()
    conn.close()


def test_malformed_json_is_a_complete_answer_that_does_not_parse(served):
    put(served, one_rule({"connection": "malformed_json"}, {"endpoint": "validate"}))
    r = requests.post(served.url + "/v1/validate", json={"pass_token": real_mint(served)}, headers=DEMO, timeout=5)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    assert int(r.headers["Content-Length"]) == len(r.content) and r.content.startswith(b'{"code":0')
    with pytest.raises(ValueError):
        r.json()
    assert r.headers[FAULT_HEADER] == "t/r"


def test_slow_body_dribbles_the_answer(served):
    put(served, one_rule({"connection": {"kind": "slow_body", "chunks": 4, "chunk_delay_ms": 300}},
                         {"endpoint": "validate"}))
    sock = raw_validate(served, real_mint(served))
    first = sock.recv(65536)
    head, _, body = first.partition(b"\r\n\r\n")
    length = int(next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1])
    assert len(body) < length  # headers and the first piece only
    pieces = 1
    while len(body) < length:
        body += sock.recv(65536)
        pieces += 1
    sock.close()
    assert pieces >= 3 and json.loads(body)["data"]["valid"] is True


def test_processed_reset_spends_the_token_and_the_retry_sees_token_consumed(served):
    put(served, {"name": "answer-lost-retry"})
    token = real_mint(served)
    with pytest.raises(requests.ConnectionError):
        requests.post(served.url + "/v1/validate", json={"pass_token": token}, headers=DEMO, timeout=5)
    retry = requests.post(served.url + "/v1/validate", json={"pass_token": token}, headers=DEMO, timeout=5)
    assert retry.json()["data"] == {"valid": False, "error": "token_consumed"}
    assert FAULT_HEADER not in retry.headers


def test_connection_faults_do_not_upset_the_server(served):
    """After every kind of broken connection the same server still answers normally."""
    for effect in ({"connection": "reset"}, {"connection": "truncated_body"},
                   {"connection": {"kind": "hang", "max_s": 0.2}}):
        put(served, one_rule(effect, {"endpoint": "validate"}))
        try:
            requests.post(served.url + "/v1/validate", json={"pass_token": "x"}, headers=DEMO, timeout=5)
        except requests.RequestException:
            pass
    requests.delete(served.url + "/_emulator/profile", timeout=5)
    ok = requests.post(served.url + "/v1/validate", json={"pass_token": real_mint(served)}, headers=DEMO, timeout=5)
    assert ok.json()["data"]["valid"] is True

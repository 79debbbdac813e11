"""Every file in profiles/ passes check-profile and, switched on at runtime in a real gunicorn
emulator, does what its header comment says, shown with real HTTP requests. (The browser-side
effects are also shown in Chromium: tests/browser/test_fault_profiles_browser.py.)"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from emulator.faults import engine, loader
from tests.support.servers import running_emulator

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
DEMO = {"X-App-Key": "demo_app", "X-App-Secret": "demo_secret"}
FAULT = "X-Captchala-Emulator-Fault"
FILES = sorted((ROOT / "profiles").glob("*.yaml"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = tmp_path_factory.mktemp("builtin-profiles") / "state.db"
    with running_emulator("--workers", "2", "--store", f"sqlite:///{db}") as emulator:
        yield emulator


class Probe:
    """The emulator with one built-in profile switched on, and the requests a probe needs."""

    def __init__(self, server, name: str):
        self.url, self.name, self.server = server.url, name, server

    def mint(self, **claims) -> str:
        return self.server.mint(**claims)

    def post(self, path: str, body: dict, headers: dict | None = None, **kw) -> requests.Response:
        return requests.post(self.url + path, json=body, headers=DEMO if headers is None else headers,
                             timeout=kw.pop("timeout", 10), **kw)

    def validate(self, token: str, path: str = "/v1/validate", **kw) -> requests.Response:
        return self.post(path, {"pass_token": token}, **kw)

    def issue(self) -> requests.Response:
        return self.post("/v1/server/challenge/issue", {"action": "login"})

    def init(self) -> requests.Response:
        return self.post("/v1/challenge/init", {"app_key": "demo_app", "action": "login"}, headers={})

    def solve(self) -> requests.Response:
        init = self.init()
        assert init.json()["code"] == 0, init.text
        return self.post("/v1/challenge/solve", {"challenge_id": init.json()["data"]["challenge_id"]}, headers={})

    def journal(self, **filters) -> list[dict]:
        return requests.get(self.url + "/_emulator/requests", params=filters, timeout=10).json()["requests"]

    def wait(self, **filters) -> dict:
        r = requests.get(self.url + "/_emulator/requests/wait", params={"timeout": 15, **filters}, timeout=20)
        return r.json()["requests"][-1]

    def touched(self, response: requests.Response, rule: str) -> None:
        assert response.headers.get(FAULT) == f"{self.name}/{rule}", response.headers


def error_of(response: requests.Response) -> str:
    body = response.json()
    return body["data"].get("error") or body.get("error")


# --- one probe per built-in profile ---------------------------------------------------------


def loader_404(p: Probe):
    r = requests.get(p.url + "/captchala-loader.js", timeout=10)
    assert r.status_code == 404 and r.headers["Content-Type"].startswith("text/html")
    p.touched(r, "loader-not-found")
    assert requests.get(p.url + "/captchala.js", timeout=10).status_code == 200


def slow_loader(p: Probe):
    with pytest.raises(requests.ReadTimeout):
        requests.get(p.url + "/captchala.js", timeout=1)  # 12 s: past the loader's 10 s limit
    assert requests.get(p.url + "/captchala-loader.js", timeout=10).status_code == 200


def sdk_blocked(p: Probe):
    for asset in ("/captchala.js", "/captchala.css"):
        with pytest.raises(requests.ConnectionError, match="reset by peer"):
            requests.get(p.url + asset, timeout=10)
    assert requests.get(p.url + "/captchala-loader.js", timeout=10).status_code == 200


def challenge_init_rejected(p: Probe):
    r = p.init()
    p.touched(r, "init-rate-limited")
    assert (r.json()["code"], error_of(r), r.headers["Retry-After"]) == (429, "rate_limit_exceeded", "30")


def challenge_expired(p: Probe):
    r = p.solve()
    p.touched(r, "solve-expired")
    assert r.json()["code"] != 0 and error_of(r) == "challenge_expired"


def challenge_unreadable(p: Probe):
    r = p.solve()
    p.touched(r, "solve-garbled")
    assert r.status_code == 200
    with pytest.raises(ValueError):
        r.json()


def token_result(rule: str, code: str, **mint):
    def probe(p: Probe):
        r = p.validate(p.mint(**mint))
        p.touched(r, rule)
        assert r.json()["data"] == {"valid": False, "error": code}
        assert "forced" in r.headers["X-Captchala-Emulator-Reason"]

    return probe


def wrong_secret(p: Probe):
    for r in (p.validate(p.mint()), p.issue()):
        p.touched(r, "bad-secret")
        assert (r.json()["code"], error_of(r)) == (401, "invalid_app_secret")


def malformed_request(p: Probe):
    for r in (p.validate(p.mint()), p.issue()):
        p.touched(r, "bad-request")
        assert (r.json()["code"], error_of(r)) == (400, "invalid_request")


def wrong_app_key(p: Probe):
    for r in (p.init(), p.validate(p.mint()), p.issue()):
        p.touched(r, "unknown-key")
        assert error_of(r) == "invalid_app_key"


def flaky_validate(p: Probe):
    seen = []
    for _ in range(30):
        try:
            seen.append(p.validate("pt_x").headers.get(FAULT))
        except requests.ConnectionError:
            seen.append("flaky-validate/reset")
    expected = predicted("flaky-validate", 30)
    assert seen == expected
    assert {"flaky-validate/bad-gateway", "flaky-validate/reset", None} == set(seen)


def duplicate_submit(p: Probe):
    answers = [p.validate(p.mint()).json()["data"] for _ in range(4)]
    assert [a.get("error") for a in answers] == [None, "token_consumed", None, "token_consumed"]


def answer_lost_retry(p: Probe):
    token = p.mint()
    with pytest.raises(requests.ConnectionError):
        p.validate(token)
    assert p.validate(token).json()["data"] == {"valid": False, "error": "token_consumed"}
    assert p.validate(p.mint()).json()["data"]["valid"] is True  # it fired once


def validate_503(p: Probe):
    for r in (p.validate(p.mint()), p.issue()):
        p.touched(r, "gateway-503")
        assert r.status_code == 503 and r.headers["Content-Type"].startswith("text/html")
        assert "503 Service Temporarily Unavailable" in r.text and r.headers["Retry-After"] == "120"
    requests.post(p.url + "/_emulator/clock/advance", json={"seconds": 600}, timeout=10).raise_for_status()
    assert p.validate(p.mint()).json()["data"]["valid"] is True  # the outage ended by itself (ttl_s)


def main_down(p: Probe):
    for r in (p.validate(p.mint()), p.issue(), p.init()):
        assert r.status_code == 503 and r.headers["Content-Type"].startswith("text/html")
        p.touched(r, "main-api-down")
    offline = p.post("/v1/challenge/offline", {"app_key": "demo_app", "action": "login"}, headers={}).json()["data"]
    assert offline["pass_token"].startswith("offline_")
    assert p.validate(offline["pass_token"], "/api/validate").json()["data"]["valid"] is True


def slow_validate(p: Probe):
    for _ in range(2):
        p.validate("pt_x")
    entries = p.journal(endpoint="validate")
    latency = loader.load("slow-validate").profile.rules[0].effect.latency
    assert latency is not None
    assert [e["fault_latency_ms"] for e in entries] == [
        round(engine.latency_ms(latency, 7, "slow", n), 3) for n in (1, 2)]
    assert all(e["duration_ms"] >= e["fault_latency_ms"] for e in entries)


def connection_reset(p: Probe):
    for call in (lambda: p.validate(p.mint()), p.issue):
        with pytest.raises(requests.ConnectionError, match="reset by peer"):
            call()


def validate_hang(p: Probe):
    with pytest.raises(requests.ReadTimeout):
        p.validate(p.mint(), timeout=0.5)
    entry = p.wait(endpoint="validate", code="connection_hang")
    assert "until the client gave up" in entry["reason"]


def rate_limited(p: Probe):
    answers = [p.validate(p.mint()) for _ in range(3)] + [p.issue(), p.validate(p.mint())]
    assert [a.json()["code"] for a in answers] == [0, 0, 0, 429, 429]
    assert answers[-1].headers["Retry-After"] == "30" and answers[-1].json()["data"]["retry_after"] == 30


def degraded_quota(p: Probe):
    r = p.solve()
    p.touched(r, "quota-spent")
    token = r.json()["data"]["pass_token"]
    assert token.startswith("dg_")
    data = p.validate(token).json()["data"]
    assert (data["valid"], data["degraded"], data["reason"]) == (False, True, "quota_exhausted")


def truncated_response(p: Probe):
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        p.validate(p.mint())


def validate_malformed_json(p: Probe):
    r = p.validate(p.mint())
    p.touched(r, "garbled")
    assert r.status_code == 200 and r.text.startswith('{"code":0')
    with pytest.raises(ValueError):
        r.json()


def slow_body(p: Probe):
    body = json.dumps({"pass_token": p.mint()}).encode()
    host, port = p.url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /v1/validate HTTP/1.1\r\nHost: x\r\nX-App-Key: demo_app\r\nX-App-Secret: demo_secret\r\n"
                     b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        raw = sock.recv(65536)
        while b"\r\n\r\n" not in raw or raw.endswith(b"\r\n\r\n"):  # headers and the first piece may
            raw += sock.recv(65536)  # come in separate writes
        head, _, first = raw.partition(b"\r\n\r\n")
        length = int(next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1])
        assert b"X-Captchala-Emulator-Fault: slow-body/dribble" in head
        assert 0 < len(first) <= -(-length // 10)  # one piece of ten
        sock.settimeout(0.2)
        with pytest.raises(socket.timeout):
            sock.recv(65536)  # the next piece is not there yet


def clock_skew(p: Probe):
    token = p.mint()
    for path in ("/v1/validate", "/api/validate"):
        r = p.validate(token, path)
        p.touched(r, "clock-ahead")
        assert r.json()["data"] == {"valid": False, "error": "token_expired"}
        reason = r.headers["X-Captchala-Emulator-Reason"]
        assert "expired" in reason and "forced" not in reason


PROBES = {
    "loader-404": loader_404, "slow-loader": slow_loader, "sdk-blocked": sdk_blocked,
    "challenge-init-rejected": challenge_init_rejected, "challenge-expired": challenge_expired,
    "challenge-unreadable": challenge_unreadable,
    "token-expired": token_result("expired", "token_expired"),
    "token-reused": token_result("consumed", "token_consumed"),
    "wrong-secret": wrong_secret, "malformed-request": malformed_request, "wrong-app-key": wrong_app_key,
    "ip-mismatch": token_result("proxy-ip", "binding_mismatch", client_ip="203.0.113.5"),
    "flaky-validate": flaky_validate, "duplicate-submit": duplicate_submit, "answer-lost-retry": answer_lost_retry,
    "validate-503": validate_503, "main-down": main_down, "slow-validate": slow_validate,
    "connection-reset": connection_reset, "validate-hang": validate_hang, "rate-limited": rate_limited,
    "degraded-quota": degraded_quota, "truncated-response": truncated_response,
    "validate-malformed-json": validate_malformed_json, "slow-body": slow_body, "clock-skew": clock_skew,
}


def predicted(name: str, count: int) -> list:
    """What the pure engine says the first `count` validates get (same seed, same sequence)."""
    active = loader.load(name).profile
    counters: dict = {}

    def bump(rule):
        counters[rule] = counters.get(rule, 0) + 1
        return counters[rule]

    out = []
    for _ in range(count):
        d = engine.decide(active, active.seed or 0, engine.Facts("validate", "POST", "demo_app", None), bump, bump)
        out.append(d.label if d else None)
    return out


def test_every_profile_file_passes_check_profile():
    result = subprocess.run([sys.executable, "-m", "emulator", "check-profile", *map(str, FILES)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": ok (profile ") == len(FILES) > 20


def test_every_profile_file_has_a_probe():
    assert sorted(PROBES) == sorted(f.stem for f in FILES), "add a probe for each new built-in profile"


@pytest.mark.parametrize("name", [f.stem for f in FILES])
def test_built_in_profile_does_what_it_says(server, name):
    requests.post(server.url + "/_emulator/reset", timeout=10).raise_for_status()
    r = requests.put(server.url + "/_emulator/profile", json={"name": name}, timeout=10)
    assert r.status_code == 200 and r.json()["name"] == name, r.text
    try:
        PROBES[name](Probe(server, name))
    finally:
        requests.delete(server.url + "/_emulator/profile", timeout=10)

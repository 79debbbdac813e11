"""GET /_emulator/diagnosis: each finding id produced through the real endpoints (widget, validate,
issue, fault profiles, virtual clock), and absent from a clean flow. Time passes only through
PUT /_emulator/clock."""

from __future__ import annotations

import random
import time

import pytest

from emulator.app import create_app
from emulator.domain.diagnosis import RULES, diagnose, parse_since
from emulator.settings import Settings
from tests.support.apps import DEMO

USER = "203.0.113.7"  # the browser's (public) address
BACKEND = "10.0.0.5"  # the app server calling validate
PAGE = "https://shop.example/checkout"


class Flow:
    """The widget and the backend, driven through the in-process app."""

    def __init__(self, client):
        self.client = client
        self.offset = 0.0

    def init(self, app_key: str = "demo_app", ip: str = USER, **fields) -> dict:
        body = {"app_key": app_key, "action": "login", "referer": PAGE, **fields}
        return self.client.post("/v1/challenge/init", json=body, environ_base={"REMOTE_ADDR": ip}).json

    def solve(self, challenge_id: str, ip: str = USER) -> dict:
        return self.client.post("/v1/challenge/solve", json={"challenge_id": challenge_id},
                                environ_base={"REMOTE_ADDR": ip}).json

    def token(self, app_key: str = "demo_app", ip: str = USER) -> str:
        return self.solve(self.init(app_key, ip)["data"]["challenge_id"], ip)["data"]["pass_token"]

    def validate(self, token: str | None, *, headers: dict | None = None, ip: str = BACKEND, **fields) -> dict:
        body = {} if token is None else {"pass_token": token}
        response = self.client.post("/v1/validate", json={**body, **fields}, headers=headers or DEMO,
                                    environ_base={"REMOTE_ADDR": ip})
        return response.json

    def wait(self, seconds: float) -> None:
        """Let virtual time pass (the clock is shared by every worker; nothing sleeps)."""
        self.offset += seconds
        assert self.client.put("/_emulator/clock", json={"offset": self.offset}).status_code == 200

    def findings(self, **args) -> dict[str, dict]:
        response = self.client.get("/_emulator/diagnosis", query_string=args)
        assert response.status_code == 200, response.json
        return {f["id"]: f for f in response.json["findings"]}


@pytest.fixture
def flow(client) -> Flow:
    return Flow(client)


def clean_flow(flow: Flow) -> None:
    """What a correct integration does: init, solve, validate once with the user's IP, promptly."""
    token = flow.token()
    flow.wait(5)
    assert flow.validate(token, client_ip=USER)["data"]["valid"] is True
    flow.wait(1000)  # every lifetime is over: nothing may be pending


def test_a_quiet_system_answers_an_empty_list(flow):
    assert flow.findings() == {}


@pytest.mark.parametrize("finding_id", [rule.id for rule in RULES])
def test_a_clean_flow_produces_no_finding(flow, finding_id):
    clean_flow(flow)
    assert finding_id not in flow.findings()
    assert flow.findings() == {}


def test_a_long_page_url_is_journaled_shortened(flow, client):
    flow.init(referer="https://shop.example/" + "x" * 8000)
    entry = client.get("/_emulator/requests", query_string={"endpoint": "challenge_init"}).json["requests"][-1]
    assert len(entry["page"]) == 256


def test_challenge_abandoned(flow):
    flow.init()
    flow.wait(60)
    assert "challenge_abandoned" not in flow.findings()  # still within its lifetime
    flow.wait(61)
    f = flow.findings()["challenge_abandoned"]
    assert f["count"] == 1 and "not solved within 120 s" in f["examples"][0]["note"]
    assert PAGE in f["examples"][0]["note"] and f["fix"] and f["cause"] and f["inspect"]


def test_token_never_validated(flow):
    flow.token()
    flow.wait(299)
    assert "token_never_validated" not in flow.findings()
    flow.wait(2)
    f = flow.findings()["token_never_validated"]
    assert f["count"] == 1 and len(f["tokens"]) == 1 and "300 s lifetime" in f["examples"][0]["note"]


def test_submitted_before_token(flow):
    flow.init()
    flow.wait(1.5)
    assert flow.validate("")["data"]["error"] == "empty_token"
    f = flow.findings()["submitted_before_token"]
    assert f["count"] == 1 and "1.5 s after challenge init" in f["examples"][0]["note"]


def test_token_expired_before_validation(flow):
    token = flow.token()
    flow.wait(320)
    assert flow.validate(token)["data"]["error"] == "token_expired"
    f = flow.findings()["token_expired_before_validation"]
    assert f["examples"][0]["note"].startswith("validated 320 s after the solve, lifetime 300 s (20 s too late)")
    assert "refresh the challenge before submit" in f["fix"]


def test_duplicate_submit(flow):
    token = flow.token()
    assert flow.validate(token)["data"]["valid"] is True
    flow.wait(0.4)
    assert flow.validate(token)["data"]["error"] == "token_consumed"
    found = flow.findings()
    assert found["duplicate_submit"]["count"] == 1
    assert "retry_with_same_token" not in found and "token_replayed" not in found


def test_retry_with_same_token_after_a_failed_attempt(flow, client):
    token = flow.token()
    client.put("/_emulator/profile", json={"name": "validate-503"})
    assert flow.client.post("/v1/validate", json={"pass_token": token}, headers=DEMO,
                            environ_base={"REMOTE_ADDR": BACKEND}).status_code == 503
    client.delete("/_emulator/profile")
    flow.wait(5)
    assert flow.validate(token)["data"]["valid"] is True
    found = flow.findings()
    assert found["retry_with_same_token"]["count"] == 1
    assert "failed attempt" in found["retry_with_same_token"]["examples"][0]["note"]
    assert "duplicate_submit" not in found


def test_token_replayed_from_another_caller(flow):
    token = flow.token()
    assert flow.validate(token)["data"]["valid"] is True
    flow.wait(30)
    assert flow.validate(token, ip="198.51.100.9")["data"]["error"] == "token_consumed"
    f = flow.findings()["token_replayed"]
    assert f["count"] == 1 and "198.51.100.9" in f["examples"][0]["note"] and BACKEND in f["examples"][0]["note"]


def test_credentials_mismatch(flow):
    token = flow.token()
    assert flow.validate(token, headers={"X-App-Key": "demo_app", "X-App-Secret": "auto_pass_secret"})["code"] != 0
    f = flow.findings()["credentials_mismatch"]
    assert "secret belongs to app auto_pass_app" in f["examples"][0]["note"]
    assert "staging and production crossing wires" in f["cause"]


def test_token_of_other_app(flow):
    token = flow.token(app_key="auto_pass_app")
    assert flow.validate(token)["data"]["error"] == "invalid_token"
    f = flow.findings()["token_of_other_app"]
    assert "token of app auto_pass_app" in f["examples"][0]["note"]
    assert f["examples"][0]["app_key"] == "demo_app"


def test_client_ip_looks_like_proxy(flow):
    token = flow.token()
    assert flow.validate(token, client_ip="10.1.2.3")["data"]["valid"] is True
    f = flow.findings()["client_ip_looks_like_proxy"]
    assert "private or loopback" in f["examples"][0]["note"] and USER in f["examples"][0]["note"]


def test_server_token_rejected(flow, client):
    issued = client.post("/v1/server/challenge/issue", json={"action": "login", "ttl": 60, "max_uses": 1},
                         headers={"X-App-Key": "server_token_app", "X-App-Secret": "server_token_secret"}).json
    sct = issued["data"]["server_token"]
    assert flow.init("server_token_app", server_token=sct)["code"] == 0
    assert flow.init("server_token_app", server_token=sct)["data"]["error"] == "server_token_exhausted"
    f = flow.findings()["server_token_rejected"]
    assert f["count"] == 1 and f["examples"][0]["note"].startswith("server_token_exhausted at init")


def test_upstream_faults_say_whether_the_caller_retried(flow, client):
    token = flow.token()
    client.put("/_emulator/profile", json={"name": "validate-503"})
    flow.validate(token)
    flow.validate(token)
    client.delete("/_emulator/profile")
    f = flow.findings()["upstream_faults"]
    assert f["count"] == 2
    assert [e["note"].endswith("the caller retried") for e in f["examples"]] == [True, False]
    assert "validate-503/gateway-503" in f["examples"][0]["note"]


def test_filters_by_app_key_and_since(flow):
    flow.validate("")
    flow.wait(100)
    clock = flow.client.get("/_emulator/clock").json
    flow.validate("", headers={"X-App-Key": "auto_pass_app", "X-App-Secret": "auto_pass_secret"})
    assert flow.findings(app_key="demo_app")["submitted_before_token"]["count"] == 1
    assert flow.findings(app_key="auto_pass_app")["submitted_before_token"]["count"] == 1
    assert flow.findings(since=str(clock["now"] - 1))["submitted_before_token"]["count"] == 1
    assert flow.findings(since=clock["now_iso"])["submitted_before_token"]["count"] == 1
    assert flow.findings()["submitted_before_token"]["count"] == 2


def test_since_without_a_zone_is_utc_whatever_the_local_zone(monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert parse_since("2026-12-02T10:00:00") == parse_since("2026-12-02T10:00:00Z") == 1796205600.0
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("args", [{"since": "yesterday"}, {"since": "nan"}, {"colour": "red"}])
def test_bad_filters_are_a_clear_400(client, args):
    response = client.get("/_emulator/diagnosis", query_string=args)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request" and response.json["message"]


def synthetic_journal(n: int) -> list[dict]:
    """n entries of a busy, unhealthy system (seeded): inits, solves, validates, empty tokens, faults."""
    rng = random.Random(7)
    entries = []
    for i in range(1, n + 1):
        token = f"t{rng.randrange(max(n // 3, 1))}"
        entry = {"id": i, "virtual_ts": 1_800_000_000 + i * 0.5, "app_key": "demo_app",
                 "caller_ip": f"10.0.0.{i % 7}", "outcome": "ok", "status": 200}
        kind = rng.randrange(5)
        if kind == 0:
            entry.update(endpoint="challenge_init", challenge_id=f"ch_{i}")
        elif kind == 1:
            entry.update(endpoint="challenge_solve", challenge_id=f"ch_{i - 1}", token_id=token, token_fp=token)
        elif kind == 2:
            entry.update(endpoint="validate", token_id=token, token_fp=token, outcome="rejected", code="token_consumed")
        elif kind == 3:
            entry.update(endpoint="validate", outcome="rejected", code="empty_token")
        else:
            entry.update(endpoint="validate", token_id=token, token_fp=token, outcome="fault", fault="p/r", status=503)
        entries.append(entry)
    return entries


def test_diagnosis_cost_grows_linearly_with_the_journal():
    """A bigger --journal-size must not make the dashboard's poll quadratic: 8x the entries may cost
    at most 24x the time (quadratic would be 64x). Best of three runs, to ride out a busy machine."""
    def best(n: int) -> float:
        entries = synthetic_journal(n)
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            diagnose(entries, now=1_900_000_000, lifetime=lambda app_key: 300.0)
            runs.append(time.perf_counter() - started)
        return min(runs)

    assert best(4000) / best(500) < 24


def test_the_admin_token_guards_the_diagnosis(tmp_path):
    app = create_app(Settings(store=f"sqlite:///{tmp_path / 'guarded.db'}", secret="s", quiet=True, admin_token="t"))
    client = app.test_client()
    assert client.get("/_emulator/diagnosis").status_code == 401
    answer = client.get("/_emulator/diagnosis", headers={"Authorization": "Bearer t"})
    assert answer.status_code == 200 and answer.json["findings"] == []

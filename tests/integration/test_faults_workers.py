"""Fault profiles on real gunicorn: the same seed gives the same fired rules with 1 and 4 workers,
first/after/every/times count across workers, latency never serialises the server, rate limits
are shared, and a bad profile is refused at start-up and on reload."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
import requests

from emulator.faults import engine
from emulator.faults.profile import load_yaml
from tests.support.servers import running_emulator

pytestmark = pytest.mark.integration
DEMO = {"X-App-Key": "demo_app", "X-App-Secret": "demo_secret"}
FAULT = "X-Captchala-Emulator-Fault"

CHAOS = """
name: chaos
rules:
  - name: outage
    match: {endpoint: validate}
    when: {probability: 0.3}
    effect: {status: 503, body: html}
  - name: expired
    match: {endpoint: validate, action: login}
    when: {every: 3}
    effect: {token_result: token_expired}
  - name: observe
    effect: {latency_ms: {min: 0, max: 2}}
"""


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One 4-worker emulator for the counting tests (32 threads each, so 32 requests always fit)."""
    root = tmp_path_factory.mktemp("faults-workers")
    apps = root / "apps.yaml"
    apps.write_text("- {app_key: tiny_app, app_secret: tiny_secret, rate_limit: 5}\n")
    with running_emulator("--workers", "4", "--threads", "32", "--store", f"sqlite:///{root / 'state.db'}",
                          "--apps", str(apps)) as server:
        yield server


@pytest.fixture
def emu(shared):
    requests.post(shared.url + "/_emulator/reset", timeout=10).raise_for_status()
    yield shared
    requests.delete(shared.url + "/_emulator/profile", timeout=10)


def put(server, profile: dict) -> None:
    r = requests.put(server.url + "/_emulator/profile", json={"profile": profile}, timeout=10)
    assert r.status_code == 200, r.text


def entries(server, **filters) -> list[dict]:
    return requests.get(server.url + "/_emulator/requests", params={"limit": 1000, **filters},
                        timeout=10).json()["requests"]


def concurrently(n: int, call) -> list:
    barrier = Barrier(n)

    def one(i):
        barrier.wait(10)
        return call(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def validate(server, token: str = "x", **kw) -> requests.Response:
    """A fresh connection per request, so requests spread over the workers."""
    return requests.post(server.url + "/v1/validate", json={"pass_token": token}, headers=DEMO,
                         timeout=kw.pop("timeout", 20), **kw)


# --- acceptance 2: determinism ------------------------------------------------------------


def fired_sequence(tmp_path, workers: int) -> tuple[list, set]:
    tmp_path.mkdir()
    profile = tmp_path / "chaos.yaml"
    profile.write_text(CHAOS)
    with running_emulator("--workers", str(workers), "--store", f"sqlite:///{tmp_path / f'w{workers}.db'}",
                          "--profile", str(profile), "--seed", "11") as server:
        labels = []
        for i in range(45):
            token = server.mint(action="login" if i % 2 else "pay")
            labels.append(validate(server, token).headers.get(FAULT))
        journal = entries(server, endpoint="validate")
    assert [e["fault"] for e in journal] == labels  # the request log records the same rules
    return labels, {e["fault_worker"] for e in journal}


def expected_sequence() -> list:
    """The same decisions, computed by the pure engine alone."""
    p = load_yaml(CHAOS, "chaos")
    counts: Counter = Counter()

    def bump(rule):
        counts[rule] += 1
        return counts[rule]

    out = []
    for i in range(45):
        d = engine.decide(p, 11, engine.Facts("validate", "POST", "demo_app", "login" if i % 2 else "pay"),
                          bump, bump)
        out.append(d.label if d else None)
    return out


def test_same_seed_same_requests_same_fired_rules_with_1_and_4_workers(tmp_path):
    one, one_workers = fired_sequence(tmp_path / "a", 1)
    four, four_workers = fired_sequence(tmp_path / "b", 4)
    again, _ = fired_sequence(tmp_path / "c", 4)
    assert len(one_workers) == 1 and len(four_workers) > 1  # really spread over several processes
    assert one == four == again == expected_sequence()
    assert {"chaos/outage", "chaos/expired", "chaos/observe"} <= set(one)


# --- acceptance 3: counters shared by every worker -----------------------------------------


@pytest.mark.parametrize(("when", "expected"), [
    ({"first": 5}, 5), ({"after": 5}, 11), ({"every": 4}, 4), ({"times": 3}, 3),
    ({"times": 6, "probability": 1}, 6),
])
def test_first_after_every_times_count_across_workers(emu, when, expected):
    put(emu, {"name": "count", "rules": [
        {"name": "counted", "match": {"endpoint": "validate"}, "when": when, "effect": {"status": 503}},
        {"name": "observe", "match": {"endpoint": "validate"}, "effect": {"latency_ms": 50}}]})
    answers = concurrently(16, lambda i: validate(emu).headers.get(FAULT))
    assert Counter(answers) == {"count/counted": expected, "count/observe": 16 - expected}
    workers = {e["fault_worker"] for e in entries(emu, endpoint="validate")}
    assert len(workers) > 1, "the 16 requests should have been served by several workers"


def test_fail_the_first_two_validates_then_succeed_with_4_workers(emu):
    put(emu, {"name": "flaky", "rules": [{"name": "first-two", "match": {"endpoint": "validate"},
                                          "when": {"first": 2}, "effect": {"status": 503, "body": "html"}}]})
    statuses = [validate(emu, emu.mint()).status_code for _ in range(8)]
    assert statuses == [503, 503] + [200] * 6


def test_a_put_through_one_worker_applies_to_all(emu):
    put(emu, {"name": "all", "rules": [{"name": "slow", "effect": {"latency_ms": 20}}]})
    answers = concurrently(16, lambda i: validate(emu).headers.get(FAULT))
    assert answers == ["all/slow"] * 16
    requests.delete(emu.url + "/_emulator/profile", timeout=10)
    assert concurrently(16, lambda i: validate(emu).headers.get(FAULT)) == [None] * 16


def test_rate_limit_is_shared_by_all_workers(emu):
    tiny = {"X-App-Key": "tiny_app", "X-App-Secret": "tiny_secret"}
    answers = concurrently(12, lambda i: requests.post(emu.url + "/v1/validate", json={"pass_token": "x"},
                                                       headers=tiny, timeout=20).json())
    codes = Counter(a["code"] for a in answers)
    assert codes == {0: 5, 429: 7}
    assert all(a["data"]["retry_after"] >= 1 for a in answers if a["code"] == 429)


# --- acceptance 4: latency never serialises ----------------------------------------------------


def all_in_flight_together(server) -> None:
    put(server, {"name": "slow", "rules": [{"name": "one-second", "match": {"endpoint": "validate"},
                                            "effect": {"latency_ms": 1000}}]})
    answers = concurrently(32, lambda i: validate(server))
    assert all(a.headers[FAULT] == "slow/one-second" for a in answers)
    journal = entries(server, endpoint="validate")[-32:]
    assert len(journal) == 32
    starts = [e["ts"] for e in journal]
    ends = [e["ts"] + e["duration_ms"] / 1000 for e in journal]
    # every request started before any of them finished: all 32 were in flight at one moment
    assert max(starts) < min(ends), (max(starts), min(ends))


def test_32_requests_under_a_1s_rule_are_all_in_flight_at_once_with_4_workers(emu):
    all_in_flight_together(emu)


def test_32_requests_under_a_1s_rule_are_all_in_flight_at_once_with_1_worker(tmp_path):
    with running_emulator("--workers", "1", "--threads", "32", "--store", f"sqlite:///{tmp_path / 's.db'}") as server:
        all_in_flight_together(server)


# --- acceptance 6: a bad profile at start-up and on reload -------------------------------------


def serve_and_fail(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emulator", "serve", "--port", "0", *args],
                          capture_output=True, text=True, timeout=60)


def test_a_bad_profile_at_start_up_is_one_clear_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: slow\n    effect: {latency_ms: {median: 120, p99: 90, max: 3000}}\n")
    result = serve_and_fail("--store", f"sqlite:///{tmp_path / 's.db'}", "--profile", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip() == (f"captchala-emulator: error: {bad}: rules[0].effect.latency_ms.p99: "
                                     "must be >= median (120)")
    unknown = serve_and_fail("--store", f"sqlite:///{tmp_path / 's.db'}", "--profile", "no-such-profile")
    assert unknown.returncode == 2 and "no built-in profile with this name" in unknown.stderr


def test_a_profile_file_reloads_on_change_and_a_broken_edit_is_logged_and_ignored(tmp_path):
    path = tmp_path / "live.yaml"
    path.write_text("name: live\nrules: [{name: one, match: {endpoint: validate}, effect: {status: 500}}]\n")
    store = f"sqlite:///{tmp_path / 's.db'}"
    with running_emulator("--workers", "2", "--store", store, "--profile", str(path)) as server:
        assert any("profile    live" in line for line in server.output)
        assert validate(server).headers[FAULT] == "live/one"
        path.write_text("name: live\nrules: [{name: two, effect: {latency_ms: {median: 9, p99: 1, max: 10}}}]\n")
        logged = poll(lambda: validate(server) is not None
                      and [x for x in server.output if "changed but is invalid" in x])
        assert f"{path}: rules[0].effect.latency_ms.p99: must be >= median (9)" in logged[0]
        assert validate(server).headers[FAULT] == "live/one"
        assert requests.get(server.url + "/_emulator/profile", timeout=10).json()["rules"][0]["name"] == "one"
        path.write_text("name: live\nrules: [{name: three, match: {endpoint: validate}, effect: {status: 502}}]\n")
        assert poll(lambda: validate(server).headers.get(FAULT) == "live/three")
        assert concurrently(8, lambda i: validate(server).status_code) == [502] * 8


def poll(check, timeout: float = 15.0):
    """Retry a check until it holds (the file watcher looks once a second per worker)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)  # polling for a condition, not waiting for time to pass
    raise AssertionError("condition never held")

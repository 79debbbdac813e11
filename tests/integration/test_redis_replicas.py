"""Two emulator replicas (real gunicorn, different ports) sharing one real redis-server: single
use, server-token uses, the fault profile and the virtual clock are shared; a Redis outage is a
clear error that heals by itself, with nothing consumed lost."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
import requests

from tests.support.redis import RedisServer
from tests.support.servers import running_emulator

pytestmark = pytest.mark.integration
DEMO = {"X-App-Key": "demo_app", "X-App-Secret": "demo_secret"}


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    """A and B: no --secret, so the signing secret can only be shared through Redis."""
    server = RedisServer(tmp_path_factory.mktemp("redis-replicas")).start()
    try:
        with running_emulator("--store", server.url(3), "--workers", "2", "--threads", "16") as a, \
                running_emulator("--store", server.url(3), "--workers", "2", "--threads", "16") as b:
            yield a, b
    finally:
        server.stop()


@pytest.fixture
def fresh(replicas):
    """Each test starts from a reset store (clears consumed tokens, counters, clock offset)."""
    a, b = replicas
    assert requests.post(a.url + "/_emulator/reset", timeout=10).status_code == 200
    yield a, b
    requests.delete(a.url + "/_emulator/profile", timeout=10)


def validate(url: str, token: str) -> dict:
    with requests.Session() as session:  # a new connection: spread over the workers
        response = session.post(url + "/v1/validate", json={"pass_token": token}, headers=DEMO, timeout=20)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_token_minted_and_consumed_through_a_is_consumed_through_b(fresh):
    a, b = fresh
    token = a.mint()
    assert validate(a.url, token)["data"]["valid"] is True
    answer = validate(b.url, token)
    assert answer["code"] == 0 and answer["data"] == {"valid": False, "error": "token_consumed"}


def test_a_token_minted_through_b_verifies_through_a(fresh):
    a, b = fresh
    assert validate(a.url, b.mint())["data"]["valid"] is True


def test_32_concurrent_validates_split_across_replicas_give_exactly_one_success(fresh):
    a, b = fresh
    with ThreadPoolExecutor(32) as pool:
        for round_ in range(20):
            token = (a if round_ % 2 else b).mint()
            barrier = Barrier(32)

            def hit(i: int, token=token, barrier=barrier) -> dict:
                barrier.wait(10)
                return validate((a, b)[i % 2].url, token)

            answers = list(pool.map(hit, range(32)))
            wins = [x for x in answers if x["data"].get("valid") is True]
            assert len(wins) == 1, f"round {round_}: {len(wins)} successes"
            assert sorted(x["data"].get("error") for x in answers if x not in wins) == ["token_consumed"] * 31


def test_a_server_token_with_two_uses_serves_exactly_two_inits_across_replicas(fresh):
    a, b = fresh
    issued = requests.post(a.url + "/v1/server/challenge/issue", json={"action": "login", "max_uses": 2},
                           headers=DEMO, timeout=10).json()
    assert issued["code"] == 0, issued
    sct = issued["data"]["server_token"]
    barrier = Barrier(8)

    def init(i: int) -> dict:
        barrier.wait(10)
        with requests.Session() as session:
            return session.post((a, b)[i % 2].url + "/v1/challenge/init",
                                json={"app_key": "demo_app", "action": "login", "server_token": sct},
                                timeout=20).json()

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(init, range(8)))
    served = [x for x in answers if x["code"] == 0]
    assert len(served) == 2, answers
    assert all(x["data"]["challenge_id"] for x in served)
    assert [x["data"]["error"] for x in answers if x["code"] != 0] == ["server_token_exhausted"] * 6


def test_a_profile_switched_through_a_applies_on_b(fresh):
    a, b = fresh
    profile = {"name": "replica-wide", "seed": 1,
               "rules": [{"name": "all-expired", "match": {"endpoint": "validate"},
                          "effect": {"token_result": "token_expired"}}]}
    put = requests.put(a.url + "/_emulator/profile", json={"profile": profile}, timeout=10)
    assert put.status_code == 200, put.text
    shown = requests.get(b.url + "/_emulator/profile", timeout=10).json()
    assert "replica-wide" in str(shown)
    with requests.Session() as session:
        response = session.post(b.url + "/v1/validate", json={"pass_token": a.mint()}, headers=DEMO, timeout=10)
    assert response.json()["data"] == {"valid": False, "error": "token_expired"}
    assert response.headers["X-Captchala-Emulator-Fault"] == "replica-wide/all-expired"


def test_the_clock_advanced_through_a_applies_on_b(fresh):
    a, b = fresh
    token = a.mint(ttl=60)
    advanced = requests.post(a.url + "/_emulator/clock/advance", json={"seconds": 61}, timeout=10)
    assert advanced.status_code == 200, advanced.text
    assert requests.get(b.url + "/_emulator/clock", timeout=10).json()["offset"] == 61
    assert validate(b.url, token)["data"] == {"valid": False, "error": "token_expired"}


def wait_health(url: str, status: int, timeout: float = 30) -> requests.Response:
    """Poll /_emulator/health until it answers `status` (readiness polling, bounded)."""
    deadline = time.monotonic() + timeout
    last: requests.Response | requests.RequestException | None = None
    while time.monotonic() < deadline:
        try:
            last = requests.get(url + "/_emulator/health", timeout=5)
            if last.status_code == status:
                return last
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"health never answered {status}: {last!r}")


def test_redis_outage_is_a_clear_error_and_heals_by_itself_without_losing_consumed_tokens(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    try:
        with running_emulator("--store", server.url(0), "--workers", "2") as a, \
                running_emulator("--store", server.url(0), "--workers", "1") as b:
            used, spare = a.mint(), a.mint()
            assert validate(a.url, used)["data"]["valid"] is True

            server.stop()
            for replica in (a, b):
                down = validate(replica.url, spare)
                assert down["code"] == 503 and down["error"] == "service_unavailable", down
                assert down["data"]["error"] == "service_unavailable" and down["data"].get("valid") is not True
                assert "Traceback" not in str(down)
                health = wait_health(replica.url, 503).json()
                assert health.get("status") != "ok"
                assert "redis" in f"{health.get('error')} {health.get('message')}"  # says which store is down
            minted = requests.post(a.url + "/_emulator/pass-tokens", json={"app_key": "demo_app", "action": "x"},
                                   timeout=10)
            assert minted.status_code == 503 and minted.json()["error"] == "service_unavailable"

            server.start()  # same port, same data directory
            for replica in (a, b):
                wait_health(replica.url, 200)
            assert validate(b.url, used)["data"] == {"valid": False, "error": "token_consumed"}
            assert validate(b.url, spare)["data"]["valid"] is True  # the failed call consumed nothing
            assert validate(a.url, spare)["data"] == {"valid": False, "error": "token_consumed"}
    finally:
        server.stop()

"""A consumed pass token, a solved challenge and an exhausted server token stay refused
whatever the clock does after the janitor purged their rows: a clock moved back, a restart
with a negative `clock_skew_s` rule, or replicas whose host clocks disagree."""

from __future__ import annotations

import pytest

from emulator.app import create_app
from emulator.runtime import build_runtime
from emulator.settings import Settings
from tests.conftest import DEMO, FakeTime

SCT = {"X-App-Key": "server_token_app", "X-App-Secret": "server_token_secret"}
ORIGIN = {"Origin": "http://127.0.0.1:5173"}


def mint(client, **claims) -> str:
    r = client.post("/_emulator/pass-tokens", json={"app_key": "demo_app", "action": "login", **claims})
    assert r.status_code == 201, r.json
    return r.json["pass_token"]


def validate(client, token: str, **fields) -> dict:
    r = client.post("/v1/validate", json={"pass_token": token, **fields}, headers=DEMO)
    assert r.status_code == 200, r.json
    return r.json["data"]


def issue(client, ttl: int = 20) -> str:
    r = client.post("/v1/server/challenge/issue", json={"action": "login", "max_uses": 1, "ttl": ttl}, headers=SCT)
    return r.json["data"]["server_token"]


def init(client, server_token: str) -> dict:
    body = {"app_key": "server_token_app", "action": "login", "server_token": server_token}
    return client.post("/v1/challenge/init", json=body, headers=ORIGIN).json


def purge_now(runtime) -> None:
    """What the janitor does on its own every 30 s of real time."""
    from emulator.domain.janitor import Janitor

    Janitor(runtime.store, runtime.clock).purge()


def test_purge_then_clock_back_does_not_revive_a_consumed_token(client, runtime, fake_time):
    token = mint(client, ttl=20)
    assert validate(client, token)["valid"] is True
    sct = issue(client)
    assert init(client, sct)["code"] == 0
    fake_time.advance(60)
    purge_now(runtime)
    assert client.put("/_emulator/clock", json={"offset": -60}).status_code == 200
    replay = validate(client, token)
    assert replay["valid"] is False and replay["error"] == "token_expired", replay
    assert init(client, sct)["data"]["error"] in ("server_token_expired", "server_token_exhausted")


def test_keep_token_check_of_a_purged_token_is_not_valid(client, runtime, fake_time):
    token = mint(client, ttl=20)
    assert validate(client, token)["valid"] is True
    fake_time.advance(60)
    purge_now(runtime)
    runtime.clock.set_offset(-60)
    assert validate(client, token, keep_token=True)["valid"] is False


def test_solved_challenge_is_not_solvable_again_after_purge_and_clock_back(client, runtime, fake_time):
    started = client.post("/v1/challenge/init", json={"app_key": "demo_app", "action": "login"}, headers=ORIGIN).json
    challenge = started["data"]["challenge_id"]
    solve = {"challenge_id": challenge}
    assert client.post("/v1/challenge/solve", json=solve, headers=ORIGIN).json["code"] == 0
    fake_time.advance(3600)
    purge_now(runtime)
    runtime.clock.set_offset(-3600)
    assert client.post("/v1/challenge/solve", json=solve, headers=ORIGIN).json["code"] != 0


def test_restart_with_a_negative_clock_skew_rule_does_not_revive(settings, tmp_path):
    first_time = FakeTime()
    rt = build_runtime(settings, real_time=first_time)
    client = create_app(runtime=rt).test_client()
    token = mint(client, ttl=20)
    assert validate(client, token)["valid"] is True
    sct = issue(client)
    assert init(client, sct)["code"] == 0
    rt.store.close()

    later = FakeTime(first_time.now + 120)
    rt2 = build_runtime(settings, real_time=later)
    client2 = create_app(runtime=rt2).test_client()
    client2.get("/_emulator/health")  # any request lets the fresh process's janitor purge
    rule = {"name": "skew", "match": {"endpoint": ["validate", "challenge_init"]}, "effect": {"clock_skew_s": -3600}}
    assert client2.put("/_emulator/profile", json={"profile": {"name": "skew", "rules": [rule]}}).status_code == 200
    assert validate(client2, token)["valid"] is False
    assert init(client2, sct)["code"] != 0
    rt2.store.close()


@pytest.mark.parametrize("backend", ["redis", "sqlite"])
def test_replicas_with_host_clocks_60_s_apart_never_accept_twice(backend, redis_url, tmp_path):
    store = redis_url if backend == "redis" else f"sqlite:///{tmp_path / 'shared.db'}"
    base = Settings(store=store, secret="test-secret", seed=0, quiet=True)
    behind, ahead = FakeTime(), FakeTime(1_800_000_060.0)
    rt_b, rt_a = build_runtime(base, real_time=behind), build_runtime(base, real_time=ahead)
    b = create_app(runtime=rt_b).test_client()
    try:
        token = mint(b, ttl=20)
        assert validate(b, token)["valid"] is True
        sct = issue(b)
        assert init(b, sct)["code"] == 0
        purge_now(rt_a)  # the replica whose host clock is 60 s ahead purges
        assert validate(b, token)["valid"] is False
        assert init(b, sct)["code"] != 0
    finally:
        rt_a.store.close()
        rt_b.store.close()

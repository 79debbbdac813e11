"""Replicas on one Redis that lost its data (real redis-server): a replica that ran before the
loss answers 503 and accepts nothing (which tokens were used is unknown); replicas started after
it share one new signing secret."""

from __future__ import annotations

import redis

from emulator.app import create_app
from emulator.runtime import build_runtime
from emulator.settings import Settings
from tests.conftest import DEMO


def replica(url: str):
    rt = build_runtime(Settings(store=url, seed=0, quiet=True))  # no --secret: shared through the store
    return rt, create_app(runtime=rt).test_client()


def lose_redis_data(url: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        client.flushall()  # what a restart without persistence leaves
    finally:
        client.close()


def mint(client) -> str:
    return client.post("/_emulator/pass-tokens", json={"app_key": "demo_app", "action": "login"}).json["pass_token"]


def test_after_redis_lost_its_data_a_running_replica_refuses_and_restarted_ones_converge(redis_url):
    """A replica that ran before the loss cannot know which tokens were used: health says so
    (503) and it accepts nothing. Replicas started afterwards share a new secret and generation."""
    rt_a, a = replica(redis_url)
    lose_redis_data(redis_url)
    rt_b, b = replica(redis_url)
    rt_c, c = replica(redis_url)
    try:
        response = a.get("/_emulator/health")
        assert response.status_code == 503, response.json
        assert "data in Redis is gone" in response.json["error"]
        token = mint(b)
        refused = a.post("/v1/validate", json={"pass_token": token}, headers=DEMO).json["data"]
        assert refused["valid"] is False
        answer = c.post("/v1/validate", json={"pass_token": token}, headers=DEMO).json["data"]
        assert answer["valid"] is True, answer
    finally:
        rt_a.store.close()
        rt_b.store.close()
        rt_c.store.close()

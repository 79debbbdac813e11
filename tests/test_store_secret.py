"""The signing secret never splits silently (real redis-server): after Redis lost its data,
a replica re-asserts its secret so the next replica adopts it; if another replica already
made a new one, health answers 503 and names the problem."""

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


def test_replicas_converge_when_the_old_one_notices_first(redis_url):
    rt_a, a = replica(redis_url)
    lose_redis_data(redis_url)
    assert a.get("/_emulator/health").status_code == 200  # re-asserts its secret
    rt_b, b = replica(redis_url)
    try:
        token = mint(a)
        answer = b.post("/v1/validate", json={"pass_token": token}, headers=DEMO).json["data"]
        assert answer["valid"] is True, answer
    finally:
        rt_a.store.close()
        rt_b.store.close()


def test_health_names_a_split_secret(redis_url):
    rt_a, a = replica(redis_url)
    lose_redis_data(redis_url)
    rt_b, b = replica(redis_url)  # started before anyone noticed: it made a new secret
    try:
        response = a.get("/_emulator/health")
        assert response.status_code == 503, response.json
        assert "signing secret" in response.json["error"]
        token = mint(b)
        refused = a.post("/v1/validate", json={"pass_token": token}, headers=DEMO).json["data"]
        assert refused["valid"] is False  # the split is real: health must not say ok
    finally:
        rt_a.store.close()
        rt_b.store.close()


def test_explicit_secret_needs_no_store_agreement(redis_url):
    rt = build_runtime(Settings(store=redis_url, secret="fixed", seed=0, quiet=True))
    client = create_app(runtime=rt).test_client()
    lose_redis_data(redis_url)
    try:
        assert client.get("/_emulator/health").status_code == 200
    finally:
        rt.store.close()

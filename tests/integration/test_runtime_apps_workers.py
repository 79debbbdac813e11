"""Runtime apps are visible to every worker and every replica at once (issue 13 item 3)."""

from __future__ import annotations

import pytest
import requests

from tests.support.redis import RedisServer
from tests.support.servers import running_emulator

pytestmark = pytest.mark.integration
SHOP = {"app_key": "shop_app", "app_secret": "shop_secret"}
HEADERS_KW = {"app_key": "shop_app", "app_secret": "shop_secret"}


def _round(server) -> bool:
    token = requests.post(server.url + "/_emulator/pass-tokens", json={"app_key": "shop_app"}, timeout=10)
    if token.status_code != 201:
        return False
    body = server.api("/v1/validate", {"pass_token": token.json()["pass_token"]}, **HEADERS_KW)
    return body.json()["data"].get("valid") is True


def test_every_worker_sees_an_app_added_and_removed_through_one(tmp_path):
    with running_emulator("--workers", "3", "--threads", "4", "--store", f"sqlite:///{tmp_path / 's.db'}") as server:
        assert requests.post(server.url + "/_emulator/apps", json=SHOP, timeout=10).status_code == 201
        assert all(_round(server) for _ in range(30))
        pids = {e["worker_pid"] for e in requests.get(server.url + "/_emulator/requests?app_key=shop_app&limit=200",
                                                      timeout=10).json()["requests"]}
        assert len(pids) > 1, "all requests landed on one worker: the test proved nothing"
        assert requests.delete(server.url + "/_emulator/apps/shop_app", timeout=10).status_code == 200
        answers = [server.api("/v1/validate", {"pass_token": "pt_x"}, **HEADERS_KW).json()["code"] for _ in range(30)]
        assert all(code != 0 for code in answers)


def test_replicas_on_one_redis_share_runtime_apps(tmp_path):
    redis = RedisServer(tmp_path).start()
    try:
        with running_emulator("--store", redis.url(4), "--workers", "1") as a, \
                running_emulator("--store", redis.url(4), "--workers", "1") as b:
            assert requests.post(a.url + "/_emulator/apps", json=SHOP, timeout=10).status_code == 201
            assert _round(b)
            assert requests.post(b.url + "/_emulator/apps", json=SHOP, timeout=10).status_code == 409
            assert requests.delete(b.url + "/_emulator/apps/shop_app", timeout=10).status_code == 200
            assert not _round(a)
    finally:
        redis.stop()

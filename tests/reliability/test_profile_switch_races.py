"""Profile activation is atomic: after any number of concurrent `PUT /_emulator/profile`,
every worker applies the profile that `GET /_emulator/profile` names — on 4 real gunicorn
workers over SQLite, and over a real redis-server.

Each round fires 8 PUTs of distinct profiles at the same instant (pre-connected sockets, so
they land on several workers), then asks several workers which profile is active and makes
validates on fresh connections show which profile each worker applies (a response header)."""

from __future__ import annotations

import http.client
import json
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from urllib.parse import urlparse

import pytest
import requests

from tests.reliability.racing import DEMO
from tests.support.redis import RedisServer
from tests.support.servers import running_emulator

pytestmark = [pytest.mark.integration, pytest.mark.reliability]
ROUNDS, PUTS, PROBES = 60, 8, 16


def profile(name: str) -> str:
    rule = {"name": "mark", "match": {"endpoint": "validate"},
            "effect": {"status": 503, "headers": {"X-Active-Profile": name}}}
    return json.dumps({"profile": {"name": name, "rules": [rule]}})


def _connect(url: str) -> http.client.HTTPConnection:
    parts = urlparse(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    conn.connect()
    return conn


def concurrent_puts(url: str, names: list[str], pool: ThreadPoolExecutor) -> None:
    conns = [_connect(url) for _ in names]
    barrier = Barrier(len(names))

    def put(pair: tuple[http.client.HTTPConnection, str]) -> int:
        conn, name = pair
        barrier.wait(30)
        conn.request("PUT", "/_emulator/profile", body=profile(name), headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status

    try:
        statuses = list(pool.map(put, zip(conns, names, strict=True)))
    finally:
        for conn in conns:
            conn.close()
    assert statuses == [200] * len(names), statuses


def applied(url: str, pool: ThreadPoolExecutor) -> tuple[set[str], set[str]]:
    """(names GET /profile gives, names validate applies), each over fresh connections."""
    def named(_: int) -> str:
        with requests.Session() as s:
            return s.get(url + "/_emulator/profile", timeout=10).json()["name"]

    def applies(_: int) -> str:
        with requests.Session() as s:
            return s.post(url + "/v1/validate", json={"pass_token": "x"}, headers=DEMO,
                          timeout=10).headers.get("X-Active-Profile", "none")

    return set(pool.map(named, range(PROBES // 2))), set(pool.map(applies, range(PROBES)))


def assert_every_worker_applies_what_get_names(url: str) -> None:
    with ThreadPoolExecutor(PUTS + PROBES) as pool:
        for round_ in range(ROUNDS):
            names = [f"r{round_}-{i}" for i in range(PUTS)]
            concurrent_puts(url, names, pool)
            named, seen = applied(url, pool)
            assert len(named) == 1 and named <= set(names), f"round {round_}: GET /profile names {named}"
            assert seen == named, f"round {round_}: GET names {named}, workers apply {seen}"
    rows = requests.get(url + "/_emulator/requests", params={"endpoint": "validate", "limit": "200"},
                        timeout=10).json()["requests"]
    assert len({r["worker_pid"] for r in rows}) >= 2, "every probe hit one worker: nothing was tested"


def test_concurrent_profile_switches_on_four_sqlite_workers(tmp_path):
    with running_emulator("--workers", "4", "--threads", "8", "--store", f"sqlite:///{tmp_path / 'p.db'}") as emu:
        assert_every_worker_applies_what_get_names(emu.url)


def test_concurrent_profile_switches_on_redis(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    try:
        url = server.url(3)
        with running_emulator("--workers", "2", "--threads", "8", "--store", url) as a, \
                running_emulator("--workers", "2", "--threads", "8", "--store", url) as b:
            assert_every_worker_applies_what_get_names(a.url)
            named = requests.get(b.url + "/_emulator/profile", timeout=10).json()["name"]
            assert named == requests.get(a.url + "/_emulator/profile", timeout=10).json()["name"]
    finally:
        server.stop()

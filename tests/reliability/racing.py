"""Fire N validates of one token at the same instant, over connections opened beforehand.

Each request has its own TCP connection, connected before the barrier, so the kernel has
already handed every connection to some worker and the requests really run concurrently
across processes; the answers and the pid of the worker that journaled each are returned."""

from __future__ import annotations

import http.client
import json
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from urllib.parse import urlparse

DEMO = {"X-App-Key": "demo_app", "X-App-Secret": "demo_secret", "Content-Type": "application/json"}


def _connect(url: str) -> http.client.HTTPConnection:
    parts = urlparse(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    conn.connect()
    return conn


def race(urls: list[str], token: str, n: int, pool: ThreadPoolExecutor) -> list[dict]:
    """n concurrent POST /v1/validate of `token`, spread round-robin over `urls`."""
    conns = [_connect(urls[i % len(urls)]) for i in range(n)]
    barrier = Barrier(n)
    body = json.dumps({"pass_token": token})

    def hit(conn: http.client.HTTPConnection) -> dict:
        barrier.wait(30)
        conn.request("POST", "/v1/validate", body=body, headers=DEMO)
        response = conn.getresponse()
        payload = response.read()
        assert response.status == 200, payload[:300]
        return json.loads(payload)

    try:
        return list(pool.map(hit, conns))
    finally:
        for conn in conns:
            conn.close()


def successes(answers: list[dict]) -> int:
    return sum(1 for a in answers if a["data"].get("valid") is True)


def fire(urls: list[str], calls: list[tuple[str, dict, dict]], pool: ThreadPoolExecutor) -> list[dict]:
    """Each (path, json body, headers) POSTed at the same instant on its own pre-opened
    connection, spread round-robin over `urls`; returns the JSON answers in call order."""
    conns = [_connect(urls[i % len(urls)]) for i in range(len(calls))]
    barrier = Barrier(len(calls))

    def hit(pair: tuple[http.client.HTTPConnection, tuple[str, dict, dict]]) -> dict:
        conn, (path, body, headers) = pair
        barrier.wait(30)
        conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json", **headers})
        response = conn.getresponse()
        payload = response.read()
        assert response.status == 200, payload[:300]
        return json.loads(payload)

    try:
        return list(pool.map(hit, zip(conns, calls, strict=True)))
    finally:
        for conn in conns:
            conn.close()

"""A client that stops sending inside its request line or headers is closed once its head has
taken longer than gunicorn's keep-alive time (5 s with `serve`), in both worker models, and the
connections it held never starve other clients.

gevent bounds each head read with that time itself. gunicorn's gthread worker did not: once the
first byte had come, a thread read the head with no limit, so `--threads` stalled clients froze the
worker for good (health never answered). Real gunicorn, loopback only; waiting for real time against
the server's own limit is the subject here."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.servers import address, closed_by_peer, running_emulator

pytestmark = pytest.mark.integration
HEAD_LIMIT_S = 5  # `serve`'s keep-alive time, which bounds a head read
WORKER_THREADS = 3
HELD_S = HEAD_LIMIT_S + 2  # a request the app holds (a latency rule) longer than a head may take
WITHIN_S = HEAD_LIMIT_S + 6  # generous for a loaded CI machine; without a limit: never
PARTIAL_HEADS = (  # stalled inside the request line; inside the headers
    b"POST /v1/validate HT",
    b"POST /v1/validate HTTP/1.1\r\nHost: 127.0.0.1\r\nX-App-Key: demo_app\r\nContent-",
)


@pytest.mark.parametrize("worker_class", ["gevent", "gthread"])
def test_clients_stalled_inside_their_head_are_closed_and_never_freeze_the_worker(tmp_path, worker_class):
    """Two stalled heads hold two of the worker's three threads; the third serves a validate that
    a latency rule holds longer than a head may take: read in time, it is answered, never cut."""
    with running_emulator("--store", f"sqlite:///{tmp_path / 'state.db'}", "--workers", "1",
                          "--worker-class", worker_class, "--threads", str(WORKER_THREADS)) as server:
        hold = {"name": "hold", "rules": [{"name": "hold", "match": {"endpoint": "validate"},
                                           "effect": {"latency_ms": HELD_S * 1000}}]}
        requests.put(server.url + "/_emulator/profile", json={"profile": hold}, timeout=10).raise_for_status()
        with ThreadPoolExecutor(1) as pool:
            held = pool.submit(server.api, "/v1/validate", {"pass_token": "pt_x"}, timeout=WITHIN_S + HELD_S)
            stalled = [socket.create_connection(address(server.url), timeout=WITHIN_S) for _ in PARTIAL_HEADS]
            try:
                started = time.monotonic()
                for sock, partial in zip(stalled, PARTIAL_HEADS, strict=True):
                    sock.sendall(partial)
                health = requests.get(server.url + "/_emulator/health", timeout=WITHIN_S)
                assert health.status_code == 200
                closed = [closed_by_peer(sock) for sock in stalled]
                took = time.monotonic() - started
            finally:
                for sock in stalled:
                    sock.close()
            assert closed == [True] * len(stalled), f"still open after {took:.1f} s: {closed}"
            # a head has 5 s from its first byte; the worker's main loop looks at least once a second
            assert HEAD_LIMIT_S - 1 <= took <= HEAD_LIMIT_S + 3, f"closed after {took:.1f} s, not {HEAD_LIMIT_S} s"
            answer = held.result()
            assert answer.status_code == 200 and answer.json()["data"]["valid"] is False
    assert "Traceback" not in "".join(server.output), "".join(server.output)[-3000:]

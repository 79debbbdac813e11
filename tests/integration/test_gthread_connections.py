"""`--worker-class gthread`: how its connections end never stalls the worker or its stop.

gunicorn's threaded worker closed every connection it did not keep alive on its main thread, and
that close waits up to 2 s for the client to hang up: each HTTP/1.0 client that read its answer
and kept its socket open stopped accepts, keep-alive and finished requests for 2 s. And a TLS
client that went away inside its handshake was counted out twice, so the count of open
connections went negative and a stopping worker no longer waited for requests in flight.
Real gunicorn, loopback only."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.servers import address, answering_worker, running_emulator, wait_until_held

pytestmark = pytest.mark.integration
DEMO = {"X-App-Key": "demo_app", "X-App-Secret": "demo_secret"}
NEVER_HANG_UP = 6  # clients; each cost the old main loop 2 s
BURST = 30  # new connections opened while the old worker finishes
PARTIAL_CLIENT_HELLO = bytes.fromhex("160301020001")


def test_clients_that_never_hang_up_do_not_stall_the_worker(tmp_path):
    with running_emulator("--store", f"sqlite:///{tmp_path / 'state.db'}", "--workers", "1",
                          "--worker-class", "gthread", "--threads", "4") as server:
        kept_open = []
        try:
            for _ in range(NEVER_HANG_UP):
                sock = socket.create_connection(address(server.url), timeout=10)
                sock.sendall(b"GET /_emulator/health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                answer = b""
                while chunk := sock.recv(65536):  # the server closes its side after the answer
                    answer += chunk
                assert answer.split(b"\r\n", 1)[0].endswith(b" 200 OK"), answer[:100]
                kept_open.append(sock)  # ... and this client never closes its own
            started = time.monotonic()
            assert requests.get(server.url + "/_emulator/health", timeout=30).status_code == 200
            took = time.monotonic() - started
        finally:
            for sock in kept_open:
                sock.close()
    assert took < 1.5, f"health waited {took:.1f} s behind {NEVER_HANG_UP} lingering closes"


def test_a_stopping_worker_still_waits_for_a_request_in_flight_after_broken_handshakes(tmp_path):
    with running_emulator("--store", f"sqlite:///{tmp_path / 'state.db'}", "--workers", "1", "--tls", "auto",
                          "--tls-dir", str(tmp_path / "tls"), "--worker-class", "gthread", "--threads", "4") as server:
        ca = str(tmp_path / "tls" / "ca.pem")
        for _ in range(2):  # clients that give up inside their handshake
            with socket.create_connection(address(server.url), timeout=10) as sock:
                sock.sendall(PARTIAL_CLIENT_HELLO)
        hold = {"name": "hold", "rules": [{"name": "hold", "match": {"endpoint": "validate"},
                                           "effect": {"latency_ms": 1500}}]}
        requests.put(server.url + "/_emulator/profile", json={"profile": hold}, verify=ca,
                     timeout=10).raise_for_status()
        with ThreadPoolExecutor(1) as pool:
            held = pool.submit(requests.post, server.url + "/v1/validate", json={"pass_token": "pt_x"},
                               headers=DEMO, verify=ca, timeout=15)
            assert wait_until_held(server, verify=ca), "the held validate never reached the app"
            os.kill(server.pid, signal.SIGTERM)  # gunicorn's graceful stop: 3 s for requests in flight
            answer = held.result()
        assert answer.status_code == 200 and answer.json()["data"]["valid"] is False
        assert server.proc.wait(10) == 0
    assert "Traceback" not in "".join(server.output), "".join(server.output)[-3000:]


@pytest.mark.parametrize("worker_class", ["gevent", "gthread"])
def test_a_reload_drops_no_new_connection(tmp_path, worker_class):
    """SIGHUP: a new worker takes over while the old one finishes. A finishing gthread worker
    stopped accepting but kept its own listening socket (SO_REUSEPORT) open, so the kernel went on
    queueing about half of all new connections on it, and reset them when it finally closed.
    Every probe and every connection of the burst must be answered."""
    with running_emulator("--store", f"sqlite:///{tmp_path / 'state.db'}", "--workers", "1",
                          "--worker-class", worker_class) as server:
        old = answering_worker(server)
        with socket.create_connection(address(server.url), timeout=10) as kept:  # keeps the old worker finishing
            kept.sendall(b"GET /_emulator/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert kept.recv(65536).startswith(b"HTTP/1.1 200")
            os.kill(server.pid, signal.SIGHUP)  # gunicorn starts a new worker, then stops the old one
            deadline = time.monotonic() + 20
            while answering_worker(server) == old:
                assert time.monotonic() < deadline, "no new worker answered"
            burst = [socket.create_connection(address(server.url), timeout=10) for _ in range(BURST)]
            outcomes = []
            for sock in burst:
                with sock:
                    try:
                        sock.sendall(b"GET /_emulator/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                        outcomes.append(sock.recv(12).decode("latin-1") or "closed")
                    except OSError as exc:
                        outcomes.append(type(exc).__name__)
            kept.settimeout(0)
            with contextlib.suppress(BlockingIOError):
                assert kept.recv(1) != b"", "the old worker was gone before the burst: the test proves nothing"
    assert outcomes == ["HTTP/1.1 200"] * BURST, outcomes

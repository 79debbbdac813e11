"""Real gunicorn with `serve` defaults: connections that are held open (slow clients, a long
latency fault) never freeze the control plane or the API (issue 10, items 9 and 11).

A held connection must cost a greenlet, not one of a bounded set of threads. Every test is
bounded in connections and in time and talks to loopback only; the server is killed at the end,
which ends every held request with it."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from tests.support.servers import running_emulator, wait_until_held

pytestmark = pytest.mark.integration
DEMO = {"X-App-Key": "demo_app", "X-App-Secret": "demo_secret"}
SLOW_CLIENTS = 256
TRICKLE_S = 0.25  # one byte per connection this often (the 2 s, shortened; the slower the easier)
TRICKLE_FOR_S = 4.0
ANSWER_WITHIN_S = 1.0


@pytest.fixture
def defaults(tmp_path):
    """`serve` exactly as a user starts it (default workers and worker model), on a free port."""
    with running_emulator("--store", f"sqlite:///{tmp_path / 'state.db'}") as server:
        yield server


class Tricklers:
    """SLOW_CLIENTS connections, each sending `payload` one byte every TRICKLE_S, from one thread."""

    def __init__(self, url: str, payload: bytes):
        host, port = url.rsplit("//", 1)[1].split(":")
        self.address, self.payload = (host, int(port)), payload
        self.socks: list[socket.socket] = []
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Tricklers:
        for _ in range(SLOW_CLIENTS):
            sock = socket.create_connection(self.address, timeout=5)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.socks.append(sock)
        self._thread.start()
        return self

    def _run(self) -> None:
        offset = 0
        while not self._stop.is_set() and offset < len(self.payload) - 1:  # never the last byte
            for sock in self.socks:
                with contextlib.suppress(OSError):
                    sock.send(self.payload[offset:offset + 1])
            offset += 1
            self.sent = offset
            self._stop.wait(TRICKLE_S)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        for sock in self.socks:
            sock.close()


def probe_while(server, seconds: float) -> Iterator[tuple[str, float, int]]:
    """Health and a validate, one after the other, for `seconds`: (what, seconds taken, status)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for what, call in (("health", lambda: requests.get(server.url + "/_emulator/health", timeout=10)),
                           ("validate", lambda: requests.post(server.url + "/v1/validate", json={"pass_token": "pt_x"},
                                                              headers=DEMO, timeout=10))):
            started = time.monotonic()
            try:
                status = call().status_code
            except requests.RequestException:
                status = 0
            yield what, time.monotonic() - started, status


def assert_responsive(server, seconds: float) -> None:
    seen = list(probe_while(server, seconds))
    slow = [(what, round(took, 2), status) for what, took, status in seen
            if took > ANSWER_WITHIN_S or status != 200]
    assert len(seen) >= 4 and not slow, f"{len(slow)} of {len(seen)} probes slow or failed: {slow[:6]}"


@pytest.mark.parametrize("part", ["header", "body"])
def test_256_slow_clients_leave_health_and_validate_answering(defaults, part):
    body = b'{"pass_token": "pt_slow"}' + b" " * 64
    head = (f"POST /v1/validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"X-App-Key: demo_app\r\nX-App-Secret: demo_secret\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    payload = head + body
    with Tricklers(defaults.url, payload) as slow:
        if part == "body":  # the whole head at once: the request reaches the app, which reads the body slowly
            for sock in slow.socks:
                sock.sendall(head)
            slow.payload = body
        assert_responsive(defaults, TRICKLE_FOR_S)
        assert slow.sent >= 3, "the slow clients did not get to trickle"


def test_a_30_s_latency_fault_on_every_held_request_never_locks_out_the_control_plane(defaults):
    """More validates held by a 30 s latency rule than the old model had threads (2 x 64)."""
    profile = {"name": "hold", "rules": [{"name": "hold", "match": {"endpoint": "validate"},
                                          "effect": {"latency_ms": 30000}}]}
    requests.put(defaults.url + "/_emulator/profile", json={"profile": profile}, timeout=10).raise_for_status()
    held = 160
    request = (b"POST /v1/validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"X-App-Key: demo_app\r\nX-App-Secret: demo_secret\r\nContent-Length: 20\r\n\r\n"
               b'{"pass_token":"pt_x"}'[:20])
    host, port = defaults.url.rsplit("//", 1)[1].split(":")
    socks = []
    try:
        for _ in range(held):
            sock = socket.create_connection((host, int(port)), timeout=5)
            sock.sendall(request)
            socks.append(sock)
        wait_until_held(defaults, held)  # the old thread model never lets them all in: the checks below judge it
        for call in (lambda: requests.get(defaults.url + "/_emulator/health", timeout=10),
                     lambda: requests.delete(defaults.url + "/_emulator/profile", timeout=10),
                     lambda: requests.get(defaults.url + "/_emulator/health", timeout=10)):
            started = time.monotonic()
            assert call().status_code == 200
            assert time.monotonic() - started < ANSWER_WITHIN_S
    finally:
        for sock in socks:
            sock.close()

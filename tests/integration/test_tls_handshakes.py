"""TLS handshakes that fail or stall, on real gunicorn in both worker models (`--tls auto`).

The first thing most users do with `--tls auto` is call it from a client that does not trust the
local CA yet. Under the gevent worker that printed a traceback for every such handshake, and a
client that stopped inside its handshake was never closed (each one held a connection slot of the
worker for good). Now a failed handshake is one log line naming why, and a handshake has the same
5 s as a request head. Loopback only; waiting for real time against the server's own limit is the
subject of the stalled-handshake test."""

from __future__ import annotations

import socket
import ssl
import struct
import time

import pytest
import requests

from tests.support.servers import address, closed_by_peer, running_emulator

pytestmark = pytest.mark.integration
HANDSHAKE_LIMIT_S = 5  # `serve`'s keep-alive time, which also bounds a request head
WITHIN_S = HANDSHAKE_LIMIT_S + 6
PARTIAL_CLIENT_HELLO = bytes.fromhex("160301020001")  # a record header announcing 512 bytes, then one


@pytest.fixture(params=["gevent", "gthread"])
def tls_server(request, tmp_path):
    with running_emulator("--store", f"sqlite:///{tmp_path / 'state.db'}", "--workers", "1", "--tls", "auto",
                          "--tls-dir", str(tmp_path / "tls"), "--worker-class", request.param) as server:
        yield server, tmp_path / "tls" / "ca.pem"


def _logged(server, text: str) -> bool:
    """Whether the server has logged `text` yet (its output is copied by a reader thread)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if text in "".join(server.output).lower():
            return True
        time.sleep(0.05)  # polling for the reader thread, not waiting for time to pass
    return False


def test_a_client_that_does_not_trust_the_ca_is_one_log_line_and_no_traceback(tls_server):
    server, ca = tls_server
    untrusting = ssl.create_default_context()  # the system's CAs only
    with socket.create_connection(address(server.url), timeout=WITHIN_S) as raw, \
            pytest.raises(ssl.SSLCertVerificationError):
        untrusting.wrap_socket(raw, server_hostname="localhost")
    assert requests.get(server.url + "/_emulator/health", verify=str(ca), timeout=WITHIN_S).status_code == 200
    assert _logged(server, "unknown ca"), "".join(server.output)[-2000:]
    assert "Traceback" not in "".join(server.output), "".join(server.output)[-3000:]


def test_a_client_that_stalls_inside_its_handshake_is_closed(tls_server):
    server, ca = tls_server
    with socket.create_connection(address(server.url), timeout=WITHIN_S) as stalled:
        started = time.monotonic()
        stalled.sendall(PARTIAL_CLIENT_HELLO)
        assert requests.get(server.url + "/_emulator/health", verify=str(ca), timeout=WITHIN_S).status_code == 200
        closed = closed_by_peer(stalled)
        took = time.monotonic() - started
    assert closed, f"still open after {took:.1f} s"
    assert HANDSHAKE_LIMIT_S - 1 <= took <= HANDSHAKE_LIMIT_S + 3, f"closed after {took:.1f} s"
    assert "Traceback" not in "".join(server.output), "".join(server.output)[-3000:]


@pytest.mark.parametrize("hello", [b"", PARTIAL_CLIENT_HELLO], ids=["at once", "after a hello"])
def test_clients_that_reset_their_connection_leave_no_traceback(tls_server, hello):
    server, ca = tls_server
    for _ in range(3):
        sock = socket.create_connection(address(server.url), timeout=WITHIN_S)
        if hello:
            sock.sendall(hello)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
        sock.close()
    # accepted after the resets, so answered after their handlers ran
    assert requests.get(server.url + "/_emulator/health", verify=str(ca), timeout=WITHIN_S).status_code == 200
    assert "Traceback" not in "".join(server.output), "".join(server.output)[-3000:]

"""A client that announces more body than it sends (a wrong Content-Length, a stalled upload)
gets a clear invalid_request once the body has paused for `--body-timeout` seconds, and its
connection is closed; until now the request waited for the missing bytes forever.

Real gunicorn, both worker models, loopback only. Waiting for real time is the subject here:
the server's own timeout, set to 1 s, against a client that stops sending."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.support.servers import running_emulator

pytestmark = pytest.mark.integration
BODY_TIMEOUT_S = 1
ANSWER_WITHIN_S = BODY_TIMEOUT_S + 4  # generous for a loaded CI machine; without the timeout: never


def _connect(url: str) -> socket.socket:
    host, port = url.rsplit("//", 1)[1].split(":")
    sock = socket.create_connection((host, int(port)), timeout=ANSWER_WITHIN_S)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _request(path: str, body: bytes, *, length: int | None = None,
             content_type: str = "application/json") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"X-App-Key: demo_app\r\nX-App-Secret: demo_secret\r\n"
            f"Content-Length: {len(body) if length is None else length}\r\n\r\n").encode() + body


def _read_answer(sock: socket.socket) -> tuple[bytes, dict]:
    """One HTTP answer with a Content-Length: (head, JSON body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed without an answer: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    while len(rest) < length:
        rest += sock.recv(65536)
    return head, json.loads(rest[:length])


def _closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest.fixture(params=["gevent", "gthread"])
def server(request, tmp_path):
    with running_emulator("--store", f"sqlite:///{tmp_path / 'state.db'}", "--worker-class", request.param,
                          "--body-timeout", str(BODY_TIMEOUT_S)) as running:
        yield running


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_a_body_shorter_than_its_content_length_is_refused_after_the_timeout(server, content_type):
    """Half the announced body, then nothing: a clear answer, then the connection closes (the
    rest of the body would otherwise be read as the next request)."""
    body = b'{"pass_token": "pt_x"}' if content_type == "application/json" else b"action=login"
    path = "/v1/validate" if content_type == "application/json" else "/v1/server/challenge/issue"
    with _connect(server.url) as sock:
        started = time.monotonic()
        sock.sendall(_request(path, body, length=len(body) + 40, content_type=content_type))
        head, answer = _read_answer(sock)
        took = time.monotonic() - started
        assert answer["error"] == "invalid_request", answer
        assert f"no more of the body arrived for {BODY_TIMEOUT_S} s" in head.decode("latin-1"), head
        assert BODY_TIMEOUT_S * 0.9 <= took < ANSWER_WITHIN_S
        assert _closed(sock)
    after = server.api("/v1/validate", {"pass_token": "pt_x"})  # the server itself answers as ever
    assert after.json()["data"] == {"valid": False, "error": "invalid_token"}


def test_a_pause_shorter_than_the_timeout_is_waited_for(server):
    """The timeout is for a body that stopped, not a slow one: a pause under it is fine."""
    body = json.dumps({"action": "login"}).encode()
    with _connect(server.url) as sock:
        sock.sendall(_request("/v1/server/challenge/issue", body)[:-5])
        time.sleep(BODY_TIMEOUT_S / 2)  # the pause under test, shorter than the server's timeout
        sock.sendall(body[-5:])
        _, answer = _read_answer(sock)
        assert answer["code"] == 0 and answer["data"]["server_token"].startswith("sct_")


def test_a_kept_alive_connection_may_idle_longer_than_the_body_timeout(server):
    """The body timeout is set only while a body is read: between requests, the connection keeps
    gunicorn's own keep-alive time (5 s), longer than the 1 s body timeout."""
    body = json.dumps({"action": "login"}).encode()
    with _connect(server.url) as sock:
        sock.sendall(_request("/v1/server/challenge/issue", body))
        assert _read_answer(sock)[1]["code"] == 0
        time.sleep(BODY_TIMEOUT_S * 2)  # idle between requests, past the body timeout
        sock.sendall(_request("/v1/server/challenge/issue", body))
        assert _read_answer(sock)[1]["code"] == 0

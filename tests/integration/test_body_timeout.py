"""A client that announces more body than it sends (a wrong Content-Length, a stalled upload)
gets a clear invalid_request once the body has paused for `--body-timeout` seconds, and its
connection is closed; until now the request waited for the missing bytes forever.

Real gunicorn, both worker models, loopback only. Waiting for real time is the subject here:
the server's own timeout, set to 1 s, against a client that stops sending."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from tests.support.servers import address, closed_by_peer, raw_api_request, read_answer, running_emulator

pytestmark = pytest.mark.integration
BODY_TIMEOUT_S = 1
ANSWER_WITHIN_S = BODY_TIMEOUT_S + 4  # generous for a loaded CI machine; without the timeout: never


def _connect(url: str) -> socket.socket:
    sock = socket.create_connection(address(url), timeout=ANSWER_WITHIN_S)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _read_answer(sock: socket.socket) -> tuple[bytes, dict]:
    """One HTTP answer with a Content-Length: (head, JSON body)."""
    head, body = read_answer(sock)
    return head, json.loads(body)


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
        sock.sendall(raw_api_request(path, body, length=len(body) + 40, content_type=content_type))
        head, answer = _read_answer(sock)
        took = time.monotonic() - started
        assert answer["error"] == "invalid_request", answer
        assert f"no more of the body arrived for {BODY_TIMEOUT_S} s" in head.decode("latin-1"), head
        assert BODY_TIMEOUT_S * 0.9 <= took < ANSWER_WITHIN_S
        assert closed_by_peer(sock)
    after = server.api("/v1/validate", {"pass_token": "pt_x"})  # the server itself answers as ever
    assert after.json()["data"] == {"valid": False, "error": "invalid_token"}


def test_a_pause_shorter_than_the_timeout_is_waited_for(server):
    """The timeout is for a body that stopped, not a slow one: a pause under it is fine."""
    body = json.dumps({"action": "login"}).encode()
    with _connect(server.url) as sock:
        sock.sendall(raw_api_request("/v1/server/challenge/issue", body)[:-5])
        time.sleep(BODY_TIMEOUT_S / 2)  # the pause under test, shorter than the server's timeout
        sock.sendall(body[-5:])
        _, answer = _read_answer(sock)
        assert answer["code"] == 0 and answer["data"]["server_token"].startswith("sct_")


def test_a_kept_alive_connection_may_idle_longer_than_the_body_timeout(server):
    """The body timeout is set only while a body is read: between requests, the connection keeps
    gunicorn's own keep-alive time (5 s), longer than the 1 s body timeout."""
    body = json.dumps({"action": "login"}).encode()
    with _connect(server.url) as sock:
        sock.sendall(raw_api_request("/v1/server/challenge/issue", body))
        assert _read_answer(sock)[1]["code"] == 0
        time.sleep(BODY_TIMEOUT_S * 2)  # idle between requests, past the body timeout
        sock.sendall(raw_api_request("/v1/server/challenge/issue", body))
        assert _read_answer(sock)[1]["code"] == 0


@pytest.mark.parametrize("chunked", [False, True])
def test_the_pytest_plugins_in_process_server_times_out_a_stalled_body_too(tmp_path, caplog, chunked):
    """`captchala_emulator_settings` takes body_timeout: werkzeug's server, which the plugin runs,
    must honour it (it waited for ever) and log no traceback when the client then hangs up
    (werkzeug reads what is left after the answer, from a socket file that had timed out)."""
    from emulator.app import create_app
    from emulator.server import ThreadServer
    from emulator.settings import Settings

    server = ThreadServer(create_app(Settings(store=f"sqlite:///{tmp_path / 's.db'}", quiet=True,
                                              body_timeout=BODY_TIMEOUT_S))).start()
    serving = set(threading.enumerate())  # the request's handler thread is the one that comes after
    try:
        with caplog.at_level("DEBUG", logger="werkzeug"), _connect(server.url) as sock:
            started = time.monotonic()
            if chunked:
                sock.sendall(b"POST /v1/validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             b"Transfer-Encoding: chunked\r\nX-App-Key: demo_app\r\nX-App-Secret: demo_secret\r\n"
                             b"\r\n20\r\n{\"pass_token\": ")
            else:
                sock.sendall(raw_api_request("/v1/validate", b'{"pass_token": ', length=40))
            head, answer = _read_answer(sock)
            assert answer["error"] == "invalid_request"
            assert BODY_TIMEOUT_S * 0.9 <= time.monotonic() - started < ANSWER_WITHIN_S
            reason = "chunked body stopped" if chunked else "Content-Length larger than the body sent"
            assert reason in head.decode("latin-1")
            sock.close()  # the client hangs up: werkzeug's read of the rest must end quietly
            for handler in set(threading.enumerate()) - serving:  # it reads the rest, logs, and ends
                handler.join(ANSWER_WITHIN_S)
        assert "Traceback" not in caplog.text and "Error on request" not in caplog.text, caplog.text
    finally:
        server.stop()


def test_a_stalled_body_under_a_connection_reset_fault_is_waited_for_once(tmp_path):
    """Fault matching reads the body first; the reset fault drains it before it resets. A body
    that had already stalled was waited for again there: twice --body-timeout before the reset."""
    import requests

    timeout = 2
    with running_emulator("--store", f"sqlite:///{tmp_path / 'state.db'}", "--body-timeout", str(timeout)) as server:
        rule = {"name": "r", "match": {"endpoint": "validate"}, "effect": {"connection": "reset"}}
        put = requests.put(server.url + "/_emulator/profile", json={"profile": {"name": "x", "rules": [rule]}},
                           timeout=10)
        assert put.status_code == 200, put.text
        with _connect(server.url) as sock:
            sock.settimeout(4 * timeout)
            started = time.monotonic()
            sock.sendall(raw_api_request("/v1/validate", b'{"pass_token": ', length=40))
            assert closed_by_peer(sock)  # reset, no answer
            took = time.monotonic() - started
        assert timeout * 0.9 <= took < timeout * 1.75, took  # twice the timeout before the fix

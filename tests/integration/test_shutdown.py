"""Stopping `serve` (real gunicorn, 2 gevent workers): SIGTERM to the master (docker stop) and
SIGINT to the whole process group (Ctrl-C in a terminal) both end with exit code 0 and print no
traceback: a user sees them on every stop, and a traceback reads as a crash."""

from __future__ import annotations

import os
import signal
import socket

import pytest
import requests

from tests.support.servers import (
    address,
    raw_api_request,
    read_answer,
    read_until_closed,
    start_emulator,
    wait_until_held,
)

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("how", ["term-master", "int-group"])
def test_a_stop_is_quiet_and_exits_0(tmp_path, how):
    server = start_emulator("--store", f"sqlite:///{tmp_path / 's.db'}")
    token = server.mint()
    assert server.api("/v1/validate", {"pass_token": token}).json()["data"]["valid"] is True
    if how == "term-master":
        code = server.stop(signal.SIGTERM, timeout=20)
    else:
        os.killpg(server.proc.pid, signal.SIGINT)  # the session start_emulator made: master and workers
        code = server.proc.wait(20)
    assert server.reader is not None
    server.reader.join(10)  # it has read the last line once the process and its workers are gone
    text = "".join(server.output)
    assert code == 0, text[-3000:]
    assert "Traceback" not in text and "Exception ignored" not in text and "failed with" not in text, text[-3000:]


def test_the_throwaway_store_of_a_port_0_server_is_removed_when_it_stops(tmp_path):
    """`serve --port 0` without --store gets a state file of its own process: nothing can start on
    it again, so it goes with the server instead of piling up under the state directory."""
    server = start_emulator(env={"XDG_STATE_HOME": str(tmp_path)})
    state = tmp_path / "captchala-emulator"
    assert server.api("/v1/validate", {"pass_token": server.mint()}).json()["data"]["valid"] is True
    assert [p.name for p in state.iterdir() if p.name.startswith(f"state-port0-{server.pid}.db")]
    assert server.stop(signal.SIGTERM, timeout=20) == 0
    assert sorted(p.name for p in state.iterdir()) == []


def test_connections_still_open_when_a_reloaded_worker_gives_up_are_closed_without_a_500(tmp_path):
    """SIGHUP (reload) stops the old worker: a keep-alive connection it still holds at the graceful
    timeout (3 s) is closed. gunicorn's gevent worker answered such an idle connection with an HTTP
    500 and logged `Error handling request` with a GreenletExit traceback: the client got an
    error for a request it never sent. A request still held then (by a latency rule here) gets no 500 either."""
    server = start_emulator("--store", f"sqlite:///{tmp_path / 's.db'}", "--workers", "1")
    addr = address(server.url)
    idle = socket.create_connection(addr, timeout=15)
    idle.sendall(b"GET /_emulator/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert read_answer(idle)[0].startswith(b"HTTP/1.1 200")
    hold = {"name": "hold", "rules": [{"name": "hold", "match": {"endpoint": "validate"},
                                       "effect": {"latency_ms": 30000}}]}
    requests.put(server.url + "/_emulator/profile", json={"profile": hold}, timeout=10).raise_for_status()
    held = socket.create_connection(addr, timeout=15)
    held.sendall(raw_api_request("/v1/validate", b'{"pass_token": "pt_x"}'))
    assert wait_until_held(server)
    try:
        os.kill(server.proc.pid, signal.SIGHUP)
        assert read_until_closed(idle) == b""  # closed, nothing sent
        assert not read_until_closed(held).startswith(b"HTTP/1.1 500")
        assert requests.get(server.url + "/_emulator/health", timeout=10).status_code == 200  # the new worker
    finally:
        idle.close()
        held.close()
        code = server.stop(signal.SIGTERM, timeout=20)
    assert server.reader is not None
    server.reader.join(10)
    text = "".join(server.output)
    assert code == 0, text[-3000:]
    assert "Error handling request" not in text and "Traceback" not in text, text[-3000:]

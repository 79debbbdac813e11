"""Stopping `serve` (real gunicorn, 2 gevent workers): SIGTERM to the master (docker stop) and
SIGINT to the whole process group (Ctrl-C in a terminal) both end with exit code 0 and print no
traceback: a user sees them on every stop, and a traceback reads as a crash."""

from __future__ import annotations

import os
import signal

import pytest

from tests.support.servers import start_emulator

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

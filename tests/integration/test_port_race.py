"""Two `serve` processes started at the same moment on one port: exactly one runs, the other
exits 2 with the one-line message (issue 10, item 18). Workers bind with SO_REUSEPORT, so
without a claim on the port both could bind it and split its traffic between them."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests

from emulator.server import free_port

pytestmark = pytest.mark.integration
STAGGERS_S = (0.0, 0.05, 0.15, 0.3, 0.5)


# `captchala-emulator serve`, its imports done first, started when a line arrives on stdin: the
# two processes reach the port checks at the same moment, not one import time apart.
ON_GO = ("import sys; import emulator.server, emulator.app; from emulator.cli import main; "
         "sys.stdin.readline(); main(sys.argv[1:], prog_name='captchala-emulator')")


def _serve(port: int, db: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", ON_GO, "serve", "--port", str(port), "--store", db, "--quiet"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _go(pair: list[subprocess.Popen], stagger_s: float) -> None:
    """Release both; the second `stagger_s` after the first. The offset is the scenario itself
    (the old free-port probe lost only when the second probed between the first's probe and its
    workers' binds), not a wait for something to happen."""
    pair[0].stdin.write("go\n")
    pair[0].stdin.flush()
    time.sleep(stagger_s)
    pair[1].stdin.write("go\n")
    pair[1].stdin.flush()


@pytest.mark.parametrize("stagger_s", STAGGERS_S)
def test_two_serves_on_one_port_at_the_same_moment_one_runs_the_other_exits_2(tmp_path, stagger_s):
    port = free_port()
    pair = [_serve(port, f"sqlite:///{tmp_path / f'{n}.db'}") for n in range(2)]
    try:
        _go(pair, stagger_s)
        first_out = _first_exit(pair, within_s=20)
        assert first_out is not None, "both are running: they share the port"
        winner = pair[1 - pair.index(first_out)]
        health = _health(f"http://127.0.0.1:{port}", winner)
        assert winner.poll() is None, f"both exited: {winner.returncode}, {first_out.returncode}"
        loser = first_out
        assert loser.returncode == 2
        lines = loser.stderr.read().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("captchala-emulator: error: --port "), lines
        assert "already in use" in lines[0]
        assert health["store"].endswith(f"{pair.index(winner)}.db")
    finally:
        for proc in pair:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                stream.close()


def _first_exit(pair: list[subprocess.Popen], within_s: float) -> subprocess.Popen | None:
    """The first of the two to exit; None if both still run once one of them is serving."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        for proc in pair:
            if proc.poll() is not None:
                return proc
        if all(_serving(proc) for proc in pair):
            return None
        time.sleep(0.05)  # polling for an exit, not waiting for time to pass
    return None


def _serving(proc: subprocess.Popen) -> bool:
    """Both gunicorn masters have workers (children) once they are past start-up."""
    try:
        with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
            return bool(f.read().split())
    except OSError:
        return False


def _health(url: str, proc: subprocess.Popen) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            return requests.get(url + "/_emulator/health", timeout=2).json()
        except requests.RequestException:
            time.sleep(0.05)  # readiness polling
    raise AssertionError(f"the winner never answered (exit code {proc.poll()})")

"""Health answers `ok` only once every worker of `serve` has its own listening socket (real gunicorn,
2 gevent workers).

gunicorn forked its workers up to 0.1 s apart, and each one makes its socket after its fork.
Health answered as soon as the first worker could, so a load test that started on that answer
opened all its keep-alive connections while the second worker had no socket yet: in 5 of 6
starts, 32 connections all went to one worker and stayed there, at half the throughput, for the
whole run."""

from __future__ import annotations

import os
import re
import select
import signal

import pytest
import requests
from click.testing import CliRunner

from emulator.bench.procs import process_tree
from emulator.cli import main
from tests.support.servers import start_emulator, wait_for_health

pytestmark = pytest.mark.integration

BOUND = re.compile(r"^bound (\S+:\d+)$")  # tests.support.serve_gated prints it: its banner waits for the held worker


def test_health_says_starting_until_every_worker_listens(tmp_path):
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    server = start_emulator("--store", f"sqlite:///{tmp_path / 's.db'}", "--workers", "2",
                            entry="tests.support.serve_gated", banner=BOUND,
                            healthy=False, env={"SERVE_GATE": str(gate)})
    server.url = "http://" + server.url
    try:
        starting = wait_for_health(server, status=None)  # the first worker is up, the second not forked yet
        assert starting.status_code == 503
        assert starting.json()["status"] == "starting"
        assert starting.json()["workers"] == {"listening": 1, "expected": 2}
        check = CliRunner().invoke(main, ["healthcheck", "--url", server.url])  # Docker's HEALTHCHECK
        assert check.exit_code == 1 and "HTTP 503 starting: 1 of 2 workers listen" in check.output, check.output
        with open(gate, "w") as opened:
            opened.write("go")
        ready = wait_for_health(server)
        assert ready.json()["status"] == "ok" and ready.json()["workers"] == {"listening": 2, "expected": 2}
    finally:
        os.killpg(server.proc.pid, signal.SIGKILL)  # the whole session: a held worker never sees its master go
        server.proc.wait(10)


def test_after_a_reload_health_counts_the_new_workers_only(tmp_path):
    """SIGHUP starts new workers and stops the old ones: each stopped worker leaves the count, so
    health neither counts workers that are gone nor waits for ever for ones it lost count of."""
    server = start_emulator("--store", f"sqlite:///{tmp_path / 's.db'}", "--workers", "2")
    try:
        assert requests.get(server.url + "/_emulator/health", timeout=10).json()["workers"] == \
            {"listening": 2, "expected": 2}
        old = set(process_tree(server.proc.pid)) - {server.proc.pid}
        assert len(old) == 2
        os.kill(server.proc.pid, signal.SIGHUP)
        for pid in old:  # each leaves within its graceful timeout (3 s)
            assert exited(pid, timeout=20), f"worker {pid} never left"
        answer = wait_for_health(server)
        assert answer.json() | {"version": None, "store": None} == {
            "status": "ok", "version": None, "store": None, "profile": None,
            "workers": {"listening": 2, "expected": 2}}
    finally:
        assert server.stop(signal.SIGTERM, timeout=20) == 0


def exited(pid: int, *, timeout: float) -> bool:
    """Whether the process ended (a zombie counts: its exit hooks have run) within `timeout`,
    waited for on a pidfd, which becomes readable when it ends."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)

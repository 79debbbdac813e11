"""Two `serve` processes started at the same moment on one port: exactly one runs, the other
exits 2 with the one-line message (issue 10, item 18). Workers bind with SO_REUSEPORT, so
without a claim on the port both could bind it and split its traffic between them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests

from emulator.server import free_port

pytestmark = pytest.mark.integration
ROUNDS = 3


def _serve(port: int, db: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "emulator", "serve", "--port", str(port), "--store", db, "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_two_serves_on_one_port_at_the_same_moment_one_runs_the_other_exits_2(tmp_path, round_):
    port = free_port()
    pair = [_serve(port, f"sqlite:///{tmp_path / f'{n}.db'}") for n in range(2)]
    try:
        codes = []
        for proc in pair:
            try:
                codes.append(proc.wait(8))
            except subprocess.TimeoutExpired:
                codes.append(None)
        running = [p for p, code in zip(pair, codes, strict=True) if code is None]
        exited = [p for p, code in zip(pair, codes, strict=True) if code is not None]
        assert len(running) == 1 and len(exited) == 1, f"exit codes {codes}"
        loser = exited[0]
        assert loser.returncode == 2
        lines = loser.stderr.read().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("captchala-emulator: error: --port "), lines
        assert "already in use" in lines[0]
        health = requests.get(f"http://127.0.0.1:{port}/_emulator/health", timeout=5).json()
        assert health["store"].endswith(f"{pair.index(running[0])}.db")
    finally:
        for proc in pair:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
            proc.stdout.close()
            proc.stderr.close()

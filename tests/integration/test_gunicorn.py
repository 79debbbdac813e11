"""Real gunicorn: single use across 4 workers, one shared secret, and a restart on the same SQLite file."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier

import pytest
import requests
from click.testing import CliRunner

from emulator.cli import main
from emulator.settings import Settings
from tests.support.apps import DEMO
from tests.support.servers import answering_worker, running_emulator, start_emulator

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def four_workers(tmp_path_factory):
    db = tmp_path_factory.mktemp("gunicorn") / "state.db"
    with running_emulator("--workers", "4", "--threads", "16", "--store", f"sqlite:///{db}") as server:
        yield server


def test_32_concurrent_validates_of_one_token_give_exactly_one_success(four_workers):
    url = four_workers.url + "/v1/validate"
    with ThreadPoolExecutor(32) as pool:
        for round_ in range(20):
            token = four_workers.mint()
            barrier = Barrier(32)

            def hit(_, token=token, barrier=barrier):
                with requests.Session() as s:  # one connection per request: spread over the workers
                    barrier.wait(10)
                    return s.post(url, json={"pass_token": token}, headers=DEMO, timeout=20).json()

            answers = list(pool.map(hit, range(32)))
            wins = [a for a in answers if a["data"].get("valid") is True]
            assert len(wins) == 1, f"round {round_}: {len(wins)} successes"
            assert all(a["data"].get("error") == "token_consumed" for a in answers if a not in wins)


def test_token_minted_through_one_worker_verifies_through_all(four_workers):
    tokens = [four_workers.mint() for _ in range(40)]
    for token in tokens:
        with requests.Session() as s:
            body = s.post(four_workers.url + "/v1/validate", json={"pass_token": token}, headers=DEMO,
                          timeout=10).json()
        assert body["data"]["valid"] is True
    journal = requests.get(four_workers.url + "/_emulator/requests?endpoint=validate&limit=200", timeout=10)
    validated = {e["token_id"]: e for e in journal.json()["requests"][-40:]}
    assert len(validated) == 40 and {e["outcome"] for e in validated.values()} == {"valid"}
    minted = requests.get(four_workers.url + "/_emulator/requests?endpoint=mint&limit=200",
                          timeout=10).json()["requests"]
    crossed = [m for m in minted
               if m["token_id"] in validated and m["worker_pid"] != validated[m["token_id"]]["worker_pid"]]
    assert crossed, "no token was minted by one worker and validated by another"


def test_restart_on_the_same_sqlite_file_keeps_state(tmp_path):
    db = f"sqlite:///{tmp_path / 'state.db'}"
    with running_emulator("--workers", "2", "--store", db) as first:
        consumed, fresh = first.mint(), first.mint()
        assert first.api("/v1/validate", {"pass_token": consumed}).json()["data"]["valid"] is True
        issued = first.api("/v1/server/challenge/issue", {"action": "login"}).json()["data"]["server_token"]
    with running_emulator("--workers", "2", "--store", db) as second:
        assert second.api("/v1/validate", {"pass_token": consumed}).json()["data"]["error"] == "token_consumed"
        assert second.api("/v1/validate", {"pass_token": fresh}).json()["data"]["valid"] is True
        assert issued.startswith("sct_")


def test_sigterm_stops_the_server_cleanly(tmp_path):
    server = start_emulator("--workers", "2", "--store", f"sqlite:///{tmp_path / 's.db'}")
    assert server.stop() == 0


def test_readme_default_address_is_127_0_0_1_port_8080():
    """The README's `captchala-emulator serve` binds 127.0.0.1:8080: the defaults in Settings and in --help."""
    assert (Settings().host, Settings().port) == ("127.0.0.1", 8080)
    text = " ".join(CliRunner().invoke(main, ["serve", "--help"]).output.split())
    assert "env var: CAPTCHALA_EMULATOR_HOST; default: 127.0.0.1" in text
    assert "env var: CAPTCHALA_EMULATOR_PORT; default: 8080" in text


def test_readme_bare_serve_uses_sqlite_and_the_builtin_apps(tmp_path):
    """`captchala-emulator serve` with no options (the port moved off 8080 by its env twin: no fixed ports)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPTCHALA_EMULATOR_")}
    env.update({"XDG_STATE_HOME": str(tmp_path), "PYTHONUNBUFFERED": "1", "CAPTCHALA_EMULATOR_PORT": "0"})
    proc = subprocess.Popen(["captchala-emulator", "serve"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        banner = proc.stdout.readline()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+) ", banner)
        assert match, banner
        url = match.group(1)
        rest = "".join(proc.stdout.readline() for _ in range(7))
        assert "demo_app/demo_secret" in rest and f"sqlite:///{tmp_path}" in rest
        health = _poll_health(url)
        # port 0 by the env twin: the default store is this process's own file (a fixed port gets state-<port>.db)
        assert re.fullmatch(f"sqlite:///{re.escape(str(tmp_path / 'captchala-emulator'))}/state-port0-\\d+\\.db",
                            health["store"]), health["store"]
        token = requests.post(url + "/_emulator/pass-tokens", json={"action": "login"}, timeout=5).json()["pass_token"]
        body = requests.post(url + "/v1/validate", json={"pass_token": token}, headers=DEMO, timeout=5).json()
        assert body["data"]["valid"] is True
        assert Path(health["store"][len("sqlite:///"):]).exists()
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()


def _poll_health(url: str) -> dict:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            return requests.get(url + "/_emulator/health", timeout=1).json()
        except requests.RequestException:
            time.sleep(0.05)  # readiness polling, not waiting for time to pass
    raise AssertionError(f"no answer on {url}")


@pytest.mark.parametrize("worker_class", ["gevent", "gthread"])
def test_sighup_restarts_the_workers_on_the_same_address_with_the_same_state(tmp_path, worker_class):
    """gunicorn's reload: new workers, old ones stopped gracefully. With --port 0 the reload picked
    a fresh port for the new workers, so the address the banner gave answered nothing any more."""
    with running_emulator("--store", f"sqlite:///{tmp_path / 'state.db'}", "--worker-class", worker_class) as server:
        token = server.mint()
        old = _answering_workers(server)
        os.kill(server.pid, signal.SIGHUP)
        deadline = time.monotonic() + 30
        while not (_answering_workers(server) - old):
            assert time.monotonic() < deadline, "no new worker answered on the banner's address after SIGHUP"
        first = server.api("/v1/validate", {"pass_token": token}).json()["data"]
        second = server.api("/v1/validate", {"pass_token": token}).json()["data"]
        assert (first["valid"], second["valid"]) == (True, False)  # same secret, same single-use records
        assert server.proc.poll() is None


def _answering_workers(server) -> set[int]:
    """The worker pids that answered a few fresh connections (none when nothing answers)."""
    pids: set[int] = set()
    for _ in range(6):
        with contextlib.suppress(requests.RequestException):
            pids.add(answering_worker(server))
    return pids

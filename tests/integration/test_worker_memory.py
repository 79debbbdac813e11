"""Memory of `serve` (issue 11, acceptance line 4): workers share what the master loaded.

The master imports every module a worker serves with and freezes its objects (gc.freeze) just
before each fork, so the pages stay shared between the master and all workers instead of being
imported again, or copied by the workers' garbage collections, once per worker. Checked inside
real gevent workers of a real `serve` (tests.support.serve_probe), with no absolute numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from tests.support.apps import DEMO
from tests.support.servers import running_emulator

pytestmark = pytest.mark.integration
WORKERS = 2  # the `serve` default
# packages a worker serves with: all of them must come from the master, none imported after the fork
SERVING_PACKAGES = {"emulator", "flask", "werkzeug", "jinja2", "itsdangerous", "yaml", "sqlite3", "gunicorn"}
# never needed to serve on a SQLite store, in the master or a worker
NEVER_IMPORTED = ("emulator.audit", "redis", "trustme", "cryptography", "playwright")


@pytest.fixture
def probed_serve(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    with running_emulator("--store", f"sqlite:///{tmp_path / 'state.db'}", entry="tests.support.serve_probe",
                          env={"SERVE_PROBE_DIR": str(reports)}) as server:
        yield server, reports


def serve_until_every_worker_answered(server, reports: Path) -> list[dict]:
    """Validate fresh tokens, one connection each, until every worker has answered (the kernel
    spreads new connections over the workers' SO_REUSEPORT sockets by a hash: bounded tries)."""
    for _ in range(200):
        token = server.mint()
        with requests.Session() as session:
            answer = session.post(server.url + "/v1/validate", json={"pass_token": token}, headers=DEMO, timeout=10)
        assert answer.json()["data"]["valid"] is True
        if len(list(reports.glob("*.json"))) == WORKERS:
            break
    requests.get(server.url + "/_emulator/requests?limit=5", timeout=10).raise_for_status()
    requests.get(server.url + "/_emulator/health", timeout=10).raise_for_status()
    found = [json.loads(p.read_text()) for p in reports.glob("*.json")]
    assert len(found) == WORKERS, f"only {len(found)} of {WORKERS} workers answered"
    return found


def test_workers_serve_with_modules_the_master_imported_and_froze(probed_serve):
    server, reports = probed_serve
    for worker in serve_until_every_worker_answered(server, reports):
        late = [m for m in worker["imported_after_fork"] if m.split(".")[0] in SERVING_PACKAGES]
        assert late == [], f"imported by the worker after the fork (a private copy per worker): {late}"
        assert worker["app_code_frozen"], "the app's code is not in the permanent GC generation"
        assert worker["frozen_objects"] > 0


def test_nothing_the_master_imported_holds_a_primitive_gevent_replaces_after_the_fork(probed_serve):
    """Imported before gevent patches the worker, a module that bound time.sleep or threading.Lock
    at import time would block the whole worker where it should yield."""
    server, reports = probed_serve
    for worker in serve_until_every_worker_answered(server, reports):
        assert worker["unpatched_bindings"] == []


def test_serving_on_sqlite_never_imports_what_it_does_not_need(probed_serve):
    server, reports = probed_serve
    for worker in serve_until_every_worker_answered(server, reports):
        loaded = [m for m in worker["modules"] if m.startswith(NEVER_IMPORTED)]  # the master's included
        assert loaded == []

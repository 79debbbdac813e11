"""`captchala-emulator audit` and `doctor` as real subprocesses against a real gunicorn emulator
(2 workers, --admin-token): the audit's profile switches, clock moves and journal reads must reach
every worker, and the correct and fail-open apps get their verdicts there too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from emulator.server import ThreadServer
from tests.audit_apps import make_app
from tests.support.servers import running_emulator

pytestmark = pytest.mark.integration
ADMIN = "audit-admin"
ROOT = Path(__file__).resolve().parents[2]  # the checkout under test, so the subprocess runs this code
OUTAGES = ["api_503_fail_closed", "api_timeout_fail_closed", "api_malformed_fail_closed"]


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    db = tmp_path_factory.mktemp("audit-gunicorn") / "state.db"
    with running_emulator("--workers", "2", "--threads", "8", "--store", f"sqlite:///{db}",
                          "--admin-token", ADMIN) as server:
        yield server


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "CAPTCHALA_EMULATOR_ADMIN_TOKEN": ADMIN, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "emulator", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


@pytest.mark.parametrize(("kind", "exit_code", "failed"), [("correct", 0, []), ("fail_open", 1, OUTAGES)])
def test_audit_subprocess_against_gunicorn(emulator, tmp_path, kind, exit_code, failed):
    app = ThreadServer(make_app(emulator.url, kind)).start()
    try:
        result = run("audit", "--url", emulator.url, "--target", app.url + "/login", "--token-field", "captcha_token",
                     "--accept-status", "200", "--action", "login", "--degraded", "reject", "--max-wait", "6",
                     "--report-json", str(tmp_path / "report.json"))
    finally:
        app.stop()
    assert result.returncode == exit_code, result.stdout + result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert [c["id"] for c in report["cases"] if c["verdict"] != "pass"] == failed
    profile = requests.get(emulator.url + "/_emulator/profile", headers=emulator.control_headers, timeout=10).json()
    assert profile["active"] is False  # restored to what the audit found

    doctor = run("doctor", "--url", emulator.url, "--json")  # the audit's traces, read back by the doctor
    assert doctor.returncode == 1, doctor.stderr
    ids = {f["id"] for f in json.loads(doctor.stdout)}
    assert {"submitted_before_token", "duplicate_submit", "upstream_faults"} <= ids

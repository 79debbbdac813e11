"""The active audit against three real apps over HTTP (tests/audit_apps.py), each served by a real
werkzeug server and calling a real emulator server: a correct app passes every case, a fail-open
app fails exactly the three API-down cases, an app that skips validation for tokens that "look
valid" fails exactly the cases that need a validate. Also the CLI, the Python entry points, and
that the audit leaves the profile and clock as it found them."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from emulator.app import create_app
from emulator.audit import CASE_IDS, AuditOptions, run_audit
from emulator.audit.cases import forge
from emulator.audit.driver import HttpTarget
from emulator.cli import main
from emulator.client import EmulatorClient
from emulator.pytest_plugin import EmulatorHandle
from emulator.server import ThreadServer
from emulator.settings import Settings
from tests.audit_apps import KINDS, make_app

MAX_WAIT = 6.0  # the apps give validate 3 s, so they answer well within this while the API hangs
OPTIONS = AuditOptions(action="login", degraded="reject", max_wait=MAX_WAIT)
ALL_PASS = dict.fromkeys(CASE_IDS, "pass")
OUTAGE_CASES = ("api_503_fail_closed", "api_timeout_fail_closed", "api_malformed_fail_closed")
EXPECTED = {
    "correct": ALL_PASS,
    "fail_open": {**ALL_PASS, **dict.fromkeys(OUTAGE_CASES, "fail")},
    "skip_validation": {**ALL_PASS, **dict.fromkeys(
        ("forged_token_rejected", "other_app_token_rejected", "expired_token_rejected", "reused_token_rejected",
         "double_submit_single_accept", "wrong_action_rejected", *OUTAGE_CASES, "validated_server_side"), "fail"),
        "client_ip_forwarded": "skip"},
}


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    db = tmp_path_factory.mktemp("audit") / "state.db"
    settings = Settings(store=f"sqlite:///{db}", secret="audit-secret", quiet=True, host="127.0.0.1", port=0,
                        profiles_dir=str(db.parent))
    server = ThreadServer(create_app(settings)).start()
    try:
        yield EmulatorClient(server.url)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def targets(emulator):
    servers = {kind: ThreadServer(make_app(emulator.url, kind)).start() for kind in KINDS}
    try:
        yield {kind: HttpTarget(server.url + "/login", "captcha_token", (200,)) for kind, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()


def verdicts(report: dict) -> dict[str, str]:
    return {case["id"]: case["verdict"] for case in report["cases"]}


@pytest.mark.parametrize("kind", KINDS)
def test_each_app_gets_exactly_the_verdicts_it_deserves(emulator, targets, kind):
    report = run_audit(emulator, targets[kind], OPTIONS)
    assert verdicts(report) == EXPECTED[kind], json.dumps(report["cases"], indent=1)
    assert report["summary"]["ok"] is (kind == "correct")
    for case in report["cases"]:
        assert case["expected"] and case["observed"]
        assert bool(case["fix"]) is (case["verdict"] in ("fail", "warn"))


def test_a_declared_fail_open_policy_flips_the_three_api_down_cases(emulator, targets):
    options = AuditOptions(action="login", degraded="reject", max_wait=MAX_WAIT, fail_open=True)
    assert verdicts(run_audit(emulator, targets["fail_open"], options)) == ALL_PASS
    report = run_audit(emulator, targets["correct"], options)
    assert verdicts(report) == {**ALL_PASS, **dict.fromkeys(OUTAGE_CASES, "fail")}
    assert report["summary"]["api_down_policy"].startswith("fail-open")


def test_without_declarations_wrong_action_is_skipped_and_the_client_ip_is_checked(emulator):
    def proxying_app(token: str) -> bool:  # validates correctly, but sends its own address as client_ip
        r = requests.post(emulator.url + "/v1/validate", json={"pass_token": token, "client_ip": "10.0.0.8"},
                          headers={"X-App-Key": "demo_app", "X-App-Secret": "demo_secret"}, timeout=3)
        return r.status_code == 200 and r.json()["data"].get("valid") is True

    report = run_audit(emulator, proxying_app, AuditOptions(max_wait=MAX_WAIT))
    got = verdicts(report)
    assert got["wrong_action_rejected"] == "skip" and got["client_ip_forwarded"] == "warn"
    assert "10.0.0.8" in next(c for c in report["cases"] if c["id"] == "client_ip_forwarded")["observed"]


def test_the_audit_restores_the_profile_and_clock_it_found(emulator, targets):
    emulator.use_profile("slow-loader")
    emulator.set_clock(1234)
    try:
        run_audit(emulator, targets["correct"], OPTIONS)
        assert emulator.profile()["name"] == "slow-loader" and emulator.profile()["active"] is True
        assert emulator.clock()["offset"] == 1234
    finally:
        emulator.clear_profile()
        emulator.set_clock(0)


def test_a_watched_profile_file_is_restored_by_its_path(emulator, targets):
    """A file the operator named (here: in --profiles-dir; the server opens no other path) stays watched."""
    directory = Path(emulator.health()["store"].removeprefix("sqlite:///")).parent  # the --profiles-dir
    chaos = directory / "chaos.yaml"
    chaos.write_text("name: chaos\nrules:\n  - {name: slow, match: {endpoint: loader}, effect: {latency_ms: 1}}\n")
    emulator.use_profile("chaos")
    try:
        run_audit(emulator, targets["correct"], OPTIONS)
        after = emulator.profile()
        assert (after["name"], after["active"], after["watching"]) == ("chaos", True, str(chaos))
    finally:
        emulator.clear_profile()


def test_python_entry_points(emulator, targets):
    report = emulator.audit(targets["correct"], action="login", degraded="reject", max_wait=MAX_WAIT)
    assert verdicts(report) == ALL_PASS
    handle = EmulatorHandle(emulator)
    report = handle.audit(targets["skip_validation"], action="login", degraded="reject", max_wait=MAX_WAIT)
    assert verdicts(report) == EXPECTED["skip_validation"]
    assert "duplicate_submit" in {f["id"] for f in handle.diagnosis()}  # the audit's double submit, read back


def cli(emulator, target: HttpTarget, *extra: str):
    args = ["audit", "--url", emulator.url, "--target", target.url, "--token-field", "captcha_token",
            "--accept-status", "200", "--action", "login", "--degraded", "reject", "--max-wait", str(MAX_WAIT), *extra]
    return CliRunner().invoke(main, args)


def test_cli_exit_0_table_json_and_junit_for_the_correct_app(emulator, targets, tmp_path):
    result = cli(emulator, targets["correct"], "--report-json", str(tmp_path / "r.json"),
                 "--junit", str(tmp_path / "r.xml"))
    assert result.exit_code == 0, result.output
    assert "PASS  valid_token_accepted" in result.output and f"{len(CASE_IDS)} passed, 0 failed" in result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert verdicts(report) == ALL_PASS and set(report["cases"][0]) == {"id", "verdict", "expected", "observed", "fix"}
    suite = ET.parse(tmp_path / "r.xml").getroot()
    assert (suite.get("tests"), suite.get("failures")) == (str(len(CASE_IDS)), "0")


def test_cli_exit_1_when_a_case_fails(emulator, targets, tmp_path):
    result = cli(emulator, targets["fail_open"], "--junit", str(tmp_path / "r.xml"))
    assert result.exit_code == 1, result.output
    assert "FAIL  api_503_fail_closed" in result.output and "fix: fail closed" in result.output
    failed = [c.get("name") for c in ET.parse(tmp_path / "r.xml").getroot() if c.find("failure") is not None]
    assert failed == list(OUTAGE_CASES)


@pytest.mark.parametrize("args", [
    ["audit", "--url", "http://127.0.0.1:9", "--target", "http://127.0.0.1:9/x", "--accept-status", "200"],
    ["audit", "--url", "http://127.0.0.1:9", "--target", "http://x", "--token-field", "t", "--accept-status", "200",
     "--form", "novalue"],
    ["audit", "--url", "http://127.0.0.1:9", "--target", "http://x", "--token-field", "t", "--accept-status", "200",
     "--degraded", "maybe"],
])
def test_cli_usage_errors_exit_2(args):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_cli_unreachable_emulator_is_a_clear_exit_2():
    result = CliRunner().invoke(main, ["audit", "--url", "http://127.0.0.1:9", "--target", "http://127.0.0.1:9/x",
                                       "--token-field", "t", "--accept-status", "200"])
    assert result.exit_code == 2 and "cannot talk to the emulator" in result.output


def test_a_forged_token_never_validates(emulator):
    """forge() must change the signature itself: 200 fresh tokens, none of the forgeries accepted."""
    for _ in range(200):
        forged = forge(emulator.mint(app_key="demo_app"))
        answer = requests.post(emulator.url + "/v1/validate", json={"pass_token": forged, "keep_token": True},
                               headers={"X-App-Key": "demo_app", "X-App-Secret": "demo_secret"}, timeout=5)
        assert answer.json()["data"]["valid"] is False

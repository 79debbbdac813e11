"""Run the audit: every case in order, then the journal checks; put back the profile and clock
offset found; summarise the verdicts."""

from __future__ import annotations

from typing import Any

from .cases import CASES, CHECKS
from .model import Audit, AuditOptions, CaseResult, Submit


def run_audit(emulator: Any, submit: Submit, options: AuditOptions | None = None) -> dict[str, Any]:
    """Run every case against the app behind `submit`; returns {"cases": [...], "summary": {...}}."""
    audit = Audit(emulator, submit, options or AuditOptions())
    profile, offset = emulator.profile(), emulator.clock()["offset"]
    try:
        for case in (*CASES, *CHECKS):
            audit.results.append(case(audit))
    finally:
        _restore(emulator, profile, offset)
    return report(audit.results, audit.options)


def _restore(emulator: Any, profile: dict[str, Any], offset: float) -> None:
    """Put back the profile (a watched file by its path, so the watch resumes) and the clock offset."""
    if profile.get("active") and profile.get("watching"):
        emulator.use_profile(profile["watching"])
    elif profile.get("active") and profile.get("profile"):
        emulator.use_profile(profile["profile"])
    else:
        emulator.clear_profile()
    emulator.set_clock(offset)


def report(results: list[CaseResult], options: AuditOptions) -> dict[str, Any]:
    counts = {v: sum(r.verdict == v for r in results) for v in ("pass", "fail", "warn", "skip")}
    policy = "fail-open (declared with --fail-open)" if options.fail_open else "fail-closed"
    return {"cases": [r.to_dict() for r in results],
            "summary": {"total": len(results), "passed": counts["pass"], "failed": counts["fail"],
                        "warned": counts["warn"], "skipped": counts["skip"], "ok": counts["fail"] == 0,
                        "api_down_policy": policy, "degraded_policy": options.degraded or "undeclared",
                        "app_key": options.app_key, "action": options.action, "max_wait_s": options.max_wait}}

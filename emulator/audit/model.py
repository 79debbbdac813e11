"""The audit's vocabulary: its options, one case's result, one submit's outcome, and the audit in
progress with the helpers every case uses (mint a token, hand it to the app within a time limit)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Submit = Callable[[str], bool]  # hand the token to the app the way its form would; True if it let the user in
USER_IP = "203.0.113.7"  # the "user" every audit token is solved from (TEST-NET-3, never a real client)
VALIDATES = ["validate", "backup_validate"]
CASE_TIMEOUT_S = 30.0  # an app that does not answer a normal case within this fails the case


@dataclass(frozen=True)
class AuditOptions:
    app_key: str = "demo_app"
    action: str | None = None
    degraded: str | None = None  # "accept" | "reject" | None (undeclared)
    fail_open: bool = False
    max_wait: float = 5.0
    user_ip: str = USER_IP

    def __post_init__(self) -> None:
        if self.degraded not in (None, "accept", "reject"):
            raise ValueError("degraded must be 'accept', 'reject' or None")
        if not 0 < self.max_wait <= 600:
            raise ValueError("max_wait must be between 0 and 600 seconds")


@dataclass
class CaseResult:
    id: str
    verdict: str  # pass | fail | warn | skip
    expected: str
    observed: str
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "verdict": self.verdict, "expected": self.expected, "observed": self.observed,
                "fix": self.fix}


@dataclass
class Outcome:
    """One submit: did the app answer in time, and did it let the user in."""

    answered: bool
    accepted: bool = False
    seconds: float = 0.0
    error: str | None = None

    def words(self) -> str:
        if self.error:
            return f"submit failed: {self.error}"
        if not self.answered:
            return f"no answer within {self.seconds:g} s"
        return "accepted" if self.accepted else "rejected"


@dataclass
class Audit:
    """One audit in progress: the emulator, the app's submit, the options and what the app accepted."""

    emulator: Any  # an EmulatorClient (or anything with its methods)
    submit: Submit
    options: AuditOptions
    results: list[CaseResult] = field(default_factory=list)
    accepted_tokens: list[tuple[str, str]] = field(default_factory=list)  # (case id, token) the app accepted

    def mint(self, **claims: Any) -> str:
        claims.setdefault("app_key", self.options.app_key)
        claims.setdefault("action", self.options.action or "default")
        claims.setdefault("client_ip", self.options.user_ip)
        return self.emulator.mint(**claims)

    def send(self, case_id: str, token: str, limit: float = CASE_TIMEOUT_S) -> Outcome:
        outcome = timed_submit(self.submit, token, limit)
        if outcome.accepted and token:
            self.accepted_tokens.append((case_id, token))
        return outcome


def timed_submit(submit: Submit, token: str, limit: float) -> Outcome:
    """Run `submit` in a thread and wait at most `limit` seconds (a hung app cannot hang the audit)."""
    box: dict[str, Any] = {}

    def call() -> None:
        try:
            box["accepted"] = bool(submit(token))
        except Exception as exc:  # noqa: BLE001 - any failure of the app's submit is a finding
            box["error"] = f"{type(exc).__name__}: {exc}"[:200]

    started = time.monotonic()
    worker = threading.Thread(target=call, name="captchala-audit-submit", daemon=True)
    worker.start()
    worker.join(limit)
    seconds = round(time.monotonic() - started, 3)
    if worker.is_alive():
        return Outcome(False, seconds=limit)
    if "error" in box:
        return Outcome(True, error=box["error"], seconds=seconds)
    return Outcome(True, box["accepted"], seconds)

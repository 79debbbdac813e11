"""The audit's cases: each drives the application under test through `submit(token) -> accepted`
and compares what it did with what a correct integration does. Tokens come from the emulator's
control plane, outages are inline fault profiles, and expiry is the virtual clock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .model import CASE_TIMEOUT_S, VALIDATES, Audit, CaseResult, Outcome, timed_submit

OUTAGES = {  # case id -> the fault effect that breaks both validate endpoints
    "api_503_fail_closed": {"status": 503, "body": "html"},
    "api_timeout_fail_closed": None,  # a hang, sized from max_wait at run time
    "api_malformed_fail_closed": {"connection": "malformed_json"},
}

def _verdict(case_id: str, ok: bool, expected: str, observed: str, fix: str) -> CaseResult:
    return CaseResult(case_id, "pass" if ok else "fail", expected, observed, "" if ok else fix)


def _must_refuse(audit: Audit, case_id: str, token: str, expected: str, fix: str) -> CaseResult:
    outcome = audit.send(case_id, token)
    return _verdict(case_id, outcome.answered and not outcome.accepted and not outcome.error, expected,
                    outcome.words(), fix)


# --- the cases -----------------------------------------------------------------------
def valid_token_accepted(audit: Audit) -> CaseResult:
    outcome = audit.send("valid_token_accepted", audit.mint())
    return _verdict("valid_token_accepted", outcome.accepted, "accepted", outcome.words(),
                    "check the app key pair and the validate URL: a genuine fresh token must get the user in")


def empty_token_rejected(audit: Audit) -> CaseResult:
    return _must_refuse(audit, "empty_token_rejected", "", "rejected",
                        "refuse a submit without a token (the form was sent before onSuccess fired)")


def forged_token_rejected(audit: Audit) -> CaseResult:
    return _must_refuse(audit, "forged_token_rejected", forge(audit.mint()), "rejected",
                        "never trust a token because of its shape: validate it server-side")


def forge(token: str) -> str:
    """The same token with the first character of its signature changed (still looks like a pt_
    token). Not the last character: in base64 its low bits are padding, so some edits decode to
    the very same signature."""
    at = token.rindex(".") + 1
    return token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1:]


def other_app_token_rejected(audit: Audit) -> CaseResult:
    other = _other_app(audit)
    if other is None:
        return CaseResult("other_app_token_rejected", "skip", "rejected", "no other usable app in the emulator")
    return _must_refuse(audit, "other_app_token_rejected", audit.mint(app_key=other), "rejected",
                        "validate with the same app's key pair the frontend renders")


def _other_app(audit: Audit) -> str | None:
    for app in audit.emulator.apps():
        usable = not app.get("disabled") and not app.get("always_fail")
        if app["app_key"] != audit.options.app_key and usable:
            return app["app_key"]
    return None


def expired_token_rejected(audit: Audit) -> CaseResult:
    token = audit.mint(ttl=60)
    offset = audit.emulator.clock()["offset"]
    audit.emulator.set_clock(offset + 61)
    try:
        return _must_refuse(audit, "expired_token_rejected", token, "rejected",
                            "validate at submit time; reset the widget when validate answers token_expired")
    finally:
        audit.emulator.set_clock(offset)


def reused_token_rejected(audit: Audit) -> CaseResult:
    token = audit.mint()
    first = audit.send("reused_token_rejected", token)
    if not first.accepted:
        return CaseResult("reused_token_rejected", "skip", "accepted once, then rejected",
                          f"the first submit was {first.words()}, so reuse could not be tried")
    second = audit.send("reused_token_rejected", token)
    return _verdict("reused_token_rejected", second.answered and not second.accepted, "accepted once, then rejected",
                    f"first accepted, second {second.words()}",
                    "validate every submit: a token is single-use and only validate knows it was spent")


def double_submit_single_accept(audit: Audit) -> CaseResult:
    token = audit.mint()
    barrier = threading.Barrier(2)
    outcomes: list[Outcome] = []

    def one() -> None:
        barrier.wait()
        outcomes.append(audit.send("double_submit_single_accept", token))

    threads = [threading.Thread(target=one, name=f"captchala-audit-double-{i}") for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(CASE_TIMEOUT_S * 2)
    accepted = sum(o.accepted for o in outcomes)
    return _verdict("double_submit_single_accept", accepted == 1, "exactly one of two simultaneous submits accepted",
                    f"{accepted} of 2 accepted", "validate each token once; do not cache a success per token")


def wrong_action_rejected(audit: Audit) -> CaseResult:
    if not audit.options.action:
        return CaseResult("wrong_action_rejected", "skip", "rejected", "no --action given")
    token = audit.mint(action="not-" + audit.options.action)
    return _must_refuse(audit, "wrong_action_rejected", token, "rejected",
                        f"compare data.action from validate with {audit.options.action!r}")


def degraded_token_policy(audit: Audit) -> CaseResult:
    outcome = audit.send("degraded_token_policy", audit.mint(kind="degraded"))
    policy = audit.options.degraded
    observed = outcome.words()
    if policy == "accept":
        return _verdict("degraded_token_policy", outcome.accepted, "accepted (declared policy: accept)", observed,
                        "validate answers valid:false, degraded:true: accept it when degraded is true")
    if policy == "reject":
        return _verdict("degraded_token_policy", outcome.answered and not outcome.accepted,
                        "rejected (declared policy: reject)", observed, "treat valid:false as a refusal")
    if outcome.accepted:
        return CaseResult("degraded_token_policy", "warn", "a declared policy", observed,
                          "the app lets degraded (quota exhausted) tokens in: declare --degraded accept if intended")
    return CaseResult("degraded_token_policy", "pass", "rejected (no policy declared: fail closed)", observed)


def _outage(case_id: str) -> Callable[[Audit], CaseResult]:
    def run(audit: Audit) -> CaseResult:
        opts = audit.options
        effect = OUTAGES[case_id] or {"connection": {"kind": "hang", "max_s": opts.max_wait + 5}}
        audit.emulator.use_profile({"name": "audit-" + case_id.replace("_", "-"), "rules": [
            {"name": "outage", "match": {"endpoint": VALIDATES}, "effect": effect}]})
        try:
            outcome = timed_submit(audit.submit, audit.mint(), opts.max_wait)
        finally:
            audit.emulator.clear_profile()
        want = "accepted (declared --fail-open)" if opts.fail_open else "rejected"
        observed = outcome.words() + ("" if not outcome.answered else f" in {outcome.seconds:g} s")
        ok = outcome.answered and not outcome.error and outcome.accepted == opts.fail_open
        fix = (f"answer within {opts.max_wait:g} s: give the validate call a timeout" if not outcome.answered else
               "fail closed: when validate fails, times out or answers garbage, refuse (or declare --fail-open)")
        return _verdict(case_id, ok, f"{want} within {opts.max_wait:g} s", observed, fix)

    run.__name__ = case_id
    return run


def validated_server_side(audit: Audit) -> CaseResult:
    tokens = [(case, t) for case, t in audit.accepted_tokens if case not in OUTAGES]
    if not tokens:
        return CaseResult("validated_server_side", "skip", "a validate per accepted token", "no token was accepted")
    unchecked = sorted({case for case, t in tokens if not _validates(audit, t)})
    observed = (f"{len(tokens)} accepted submit(s), all validated" if not unchecked else
                f"accepted without a validate in the journal: {', '.join(unchecked)}")
    return _verdict("validated_server_side", not unchecked, "every accepted token was sent to validate", observed,
                    "always call validate before letting the user in; a token's look proves nothing")


def _validates(audit: Audit, token: str) -> list[dict[str, Any]]:
    return [e for e in audit.emulator.requests(token=token, limit=1000) if e.get("endpoint") in VALIDATES]


def client_ip_forwarded(audit: Audit) -> CaseResult:
    tokens = [t for case, t in audit.accepted_tokens if case == "valid_token_accepted"]
    sent = [e.get("client_ip") for t in tokens for e in _validates(audit, t)]
    expected = f"client_ip {audit.options.user_ip} (the user's address, from X-Forwarded-For)"
    if not sent:
        return CaseResult("client_ip_forwarded", "skip", expected, "no validate of an accepted token to look at")
    if not any(sent):
        return CaseResult("client_ip_forwarded", "warn", expected, "the app sends no client_ip",
                          "send the user's IP as client_ip so risk checks and strict binding work")
    if audit.options.user_ip not in sent:
        return CaseResult("client_ip_forwarded", "warn", expected, f"the app sends client_ip {sent[-1]}",
                          "that is a proxy's address: take the user's IP from X-Forwarded-For (trusted proxies only)")
    return CaseResult("client_ip_forwarded", "pass", expected, f"client_ip {audit.options.user_ip}")


CASES: tuple[Callable[[Audit], CaseResult], ...] = (
    valid_token_accepted, empty_token_rejected, forged_token_rejected, other_app_token_rejected,
    expired_token_rejected, reused_token_rejected, double_submit_single_accept, wrong_action_rejected,
    degraded_token_policy, _outage("api_503_fail_closed"), _outage("api_timeout_fail_closed"),
    _outage("api_malformed_fail_closed"),
)
CHECKS: tuple[Callable[[Audit], CaseResult], ...] = (validated_server_side, client_ip_forwarded)  # after the cases
CASE_IDS = tuple(c.__name__ for c in (*CASES, *CHECKS))

"""An Exchange is one API request as the journal sees it: who called, with which token,
what was answered and why. `api_call` wraps a thin view with it and turns typed errors
into the envelope."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from flask import Request, Response

from .. import process
from ..domain.journal import VALIDATE_ENDPOINTS, Outcome, new_request_key, token_fingerprint
from ..domain.tokens import Kind, Token, round_ms
from ..errors import ChallengeError, EmulatorError, ErrorCode, RequestError, StoreUnavailable, TokenRejected
from ..faults.state import UNREAD, Unread
from ..logs import log_request
from ..runtime import Runtime
from . import answers, envelope, faults
from .context import caller, current_request, peek_body, peek_token, runtime


@dataclass
class Exchange:
    key: str  # names the request before the journal numbers it (a consume record keeps it)
    endpoint: str
    ts: float  # real time, to the microsecond
    vts: float
    caller_ip: str
    method: str
    path: str
    request: Request  # the Flask request it answers, passed down rather than looked up per use
    started_ns: int = field(default_factory=time.perf_counter_ns)
    id: int | None = None  # the journal's number, given when the entry is recorded
    recordable: bool = True
    app_key: str | None = None
    token_fp: str | None = None
    token_id: str | None = None
    token_kind: str | None = None
    action: str | None = None
    outcome: Outcome = "ok"
    code: str | None = None
    reason: str | None = None
    fault: str | None = None
    status: int = 200
    detail: dict[str, Any] = field(default_factory=dict)
    # what a fault rule tells the view (web/faults.py sets them; validate and solve read them)
    forced_result: ErrorCode | None = None
    forced_kind: Kind | None = None
    profile_version: str | None | Unread = UNREAD  # as read with the clock at the start (Runtime.moment)

    @classmethod
    def begin(cls, rt: Runtime, endpoint: str, req: Request | None = None) -> Exchange:
        req = req or current_request()
        recordable = True
        version: str | None | Unread = UNREAD
        try:
            moment = rt.moment()
            vts, version = moment.vts, moment.profile_version
        except StoreUnavailable:
            vts, recordable = time.time(), False
        who = caller(rt, req)
        ex = cls(new_request_key(), endpoint, time.time_ns() // 1000 / 1e6, vts, who.ip, req.method, req.path, req,
                 recordable=recordable, profile_version=version)
        if who.note:
            ex.detail["caller_ip_note"] = who.note
        return ex

    def set_token(self, raw: str | None, rt: Runtime) -> None:
        self.token_fp = token_fingerprint(raw)
        if raw:
            kind, claims, _ = rt.signer.peek(raw)
            self.token_kind = kind.label if kind else None
            if claims:
                self.token_id = claims.get("jti") if isinstance(claims.get("jti"), str) else None
                self.action = claims.get("act") if isinstance(claims.get("act"), str) else None

    def set_verified_token(self, raw: str, token: Token) -> None:
        """Like set_token for a token this request verified or minted: no second decode."""
        self.token_fp, self.token_id, self.token_kind = token_fingerprint(raw), token.token_id, token.kind.label
        self.action = token.claims.get("act", self.action)

    def fail(self, err: EmulatorError, outcome: Outcome) -> None:
        self.outcome, self.code, self.reason = outcome, err.code.value, err.reason

    def entry(self) -> dict[str, Any]:
        return {
            "request_key": self.key, "ts": self.ts, "virtual_ts": round_ms(self.vts),
            "endpoint": self.endpoint,
            "method": self.method, "path": self.path, "caller_ip": self.caller_ip, "app_key": self.app_key,
            "token_fp": self.token_fp, "token_id": self.token_id, "token_kind": self.token_kind,
            "action": self.action, "outcome": self.outcome, "code": self.code, "reason": self.reason,
            "fault": self.fault, "status": self.status, "worker_pid": process.pid(),
            "duration_ms": (time.perf_counter_ns() - self.started_ns + 500) // 1000 / 1000, **self.detail,
        }


def api_call(endpoint: str) -> Callable:
    """Decorate a view `fn(rt, ex) -> Response` so it is journaled and errors become envelopes."""

    def decorate(fn: Callable[[Runtime, Exchange], Response]) -> Callable[[], Response]:
        @wraps(fn)
        def view(**kwargs) -> Response:
            rt = runtime()
            ex = Exchange.begin(rt, endpoint, current_request())
            response = faults.around(rt, ex, lambda view=fn: _answer(view, rt, ex, kwargs))
            ex.status = response.status_code
            envelope.with_reason(response, ex.reason, fresh=ex.fault is None)  # no fault: the view's own answer
            record(rt, ex)
            return response

        return view

    return decorate


def _answer(fn: Callable, rt: Runtime, ex: Exchange, kwargs: dict) -> Response:
    """Run the view; a typed error is journaled, then answered by web/answers.py."""
    is_validate = ex.endpoint in VALIDATE_ENDPOINTS
    try:
        return fn(rt, ex, **kwargs)
    except (EmulatorError, StoreUnavailable) as exc:
        err = answers.as_domain_error(exc)
        # token-level and widget (onError) failures are rejections; the rest are errors
        ex.fail(err, "rejected" if isinstance(err, (TokenRejected, ChallengeError)) else "error")
        if is_validate and isinstance(err, RequestError) and ex.token_fp is None:
            _note_token(rt, ex)
        return answers.api_error(err, validate=is_validate and isinstance(err, RequestError))


def _note_token(rt: Runtime, ex: Exchange) -> None:
    """A validate refused before its body was read (credentials) still names the token it
    carried, so explain can show "sent with the wrong secret" in the token's history."""
    raw = peek_token(peek_body(ex.request))
    if raw is not None:
        ex.set_token(raw, rt)


UNMATCHED = "unmatched"  # the journal's endpoint for an API-path request no route answers
API_PATHS = ("/v1/", "/api/")


def record_unmatched(rt: Runtime, response: Response, allowed: list[str] | None) -> None:
    """A request to an API path that no endpoint answers (404), or not with its method (405), is
    journaled too, with why: a backend calling GET /v1/validate or a misspelled path shows up as
    what it sent, instead of looking like a backend that never called."""
    ex = Exchange.begin(rt, UNMATCHED)
    shown = [m for m in allowed or () if m not in ("HEAD", "OPTIONS")]
    ex.reason = (f"{ex.path} answers {', '.join(sorted(shown))} only, not {ex.method}" if shown
                 else f"no API endpoint at {ex.path}")
    ex.status = response.status_code
    ex.outcome, ex.code = "error", envelope.error_for_status(ex.status).value
    envelope.with_reason(response, ex.reason, fresh=True)
    record(rt, ex)


def record(rt: Runtime, ex: Exchange, *, log: bool = True) -> None:
    """The one journal path: every API request, and the control plane's mints."""
    if ex.token_fp is None and ex.endpoint in VALIDATE_ENDPOINTS:
        _note_token(rt, ex)  # a validate a fault answered still names its token (retries, audits)
    entry = ex.entry()
    if ex.recordable:
        try:
            ex.id = entry["id"] = rt.journal.record(entry)
        except StoreUnavailable:
            pass  # the answer already says the store is down
    if log:
        log_request(entry, rt.settings.log_format)

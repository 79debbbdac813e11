"""Apply the fault engine's decision to one request: latency, a canned status page, an API error,
a forced validate answer, degraded widget tokens, the main API down, clock skew, and the
socket-level faults of connection_faults.py (reset, hang, truncated body, malformed JSON, slow body).

`around` wraps every journaled request (web/exchange.py's api_call), so the browser assets,
the widget's challenge API and the server API all obey the same profile."""

from __future__ import annotations

import http
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from flask import Response

from .. import process
from ..domain.tokens import Kind
from ..errors import (
    REQUEST_ERROR_STATUS,
    ChallengeError,
    EmulatorError,
    ErrorCode,
    RequestError,
    StoreUnavailable,
)
from ..faults.engine import Decision, Facts
from ..faults.profile import VALIDATES, Connection, Effect
from ..faults.state import Unread
from . import envelope
from .connection_faults import abandon, drain, malformed, raw_socket, slow, truncated, wait_for_hangup
from .context import request_facts

if TYPE_CHECKING:
    from ..runtime import Runtime
    from .exchange import Exchange

FAULT_HEADER = "X-Captchala-Emulator-Fault"
NO_ANSWER = 444  # journal status of a connection closed without an answer (nginx's convention)
CHALLENGE_ENDPOINTS = ("challenge_init", "challenge_solve", "challenge_offline")
GATEWAY_PHRASES = {503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}
DEFAULT_RATE_LIMIT_RETRY_S = 1

Answer = Callable[..., Response]  # answer(view=None): run the real view (or a stand-in) through _answer


def around(rt: Runtime, ex: Exchange, answer: Answer) -> Response:
    """Run the request under the active profile; with none active this costs one store read, or
    none when the request's moment already read that no profile is active (the usual case)."""
    if not ex.profile_version and not isinstance(ex.profile_version, Unread):  # "" or None: no profile
        return answer()
    seen: list[Facts] = []

    def facts() -> Facts:
        seen.append(request_facts(ex.endpoint, ex.request))
        return seen[-1]

    try:
        decision = rt.faults.decide(ex.endpoint, facts, lambda: ex.vts, ex.profile_version)
    except StoreUnavailable:  # the view answers service_unavailable through the usual path
        decision = None
    if decision is None:
        return answer()
    if seen and ex.app_key is None and rt.apps.get(seen[0].app_key):
        ex.app_key = seen[0].app_key  # so a short-circuited answer is still filed under its app
    ex.fault = decision.label
    ex.detail.update(fault_n=decision.n, fault_worker=process.pid())
    if decision.latency_ms is not None:
        ex.detail["fault_latency_ms"] = round(decision.latency_ms, 3)
    response = _apply(rt, ex, decision, answer)
    response.headers[FAULT_HEADER] = decision.label
    return response


# --- applying a decision ---------------------------------------------------------------


def _apply(rt: Runtime, ex: Exchange, decision: Decision, answer: Answer) -> Response:
    effect = decision.rule.effect
    if effect.clock_skew_s:
        ex.vts += effect.clock_skew_s
        ex.detail["clock_skew_s"] = effect.clock_skew_s
    if effect.token_result and ex.forced_result is None:
        ex.forced_result = effect.token_result
    if effect.degraded and ex.forced_kind is None:
        ex.forced_kind = Kind.DEGRADED
    delay = (decision.latency_ms or 0.0) / 1000.0
    processed = None
    if effect.processed:
        processed = answer()
        ex.detail["processed_outcome"] = ex.outcome
    if delay:
        rt.faults.sleep(delay)
    return _outcome(rt, ex, decision, answer, processed)


def _outcome(rt: Runtime, ex: Exchange, decision: Decision, answer: Answer,
             processed: Response | None) -> Response:
    effect, why = decision.rule.effect, f"fault rule {decision.label}"
    if effect.status is not None:
        shown = effect.body if effect.body in ("json", "html", "empty") else "text"
        _note(ex, f"http_{effect.status}", f"{why}: HTTP {effect.status} with a {shown} body")
        return status_response(effect, ex.endpoint)
    if effect.main_down:
        _note(ex, "http_503", f"{why}: main API down (503 gateway page; the widget falls back to the backup)")
        return gateway_page(503)
    if effect.error:
        err = _error_for(ex.endpoint, effect, f"{why}: injected {effect.error.value}")
        return answer(view=_raiser(err))
    conn = effect.connection
    if conn is not None and conn.kind in ("reset", "hang"):
        return _reset(ex, why) if conn.kind == "reset" else _hang(rt, ex, conn, why)
    response = processed if processed is not None else answer()
    if conn is not None:
        ex.detail["connection"] = conn.kind
        return {"truncated_body": truncated, "malformed_json": malformed, "slow_body": slow}[conn.kind](
            response, conn, rt.faults.sleep)
    return response


def _note(ex: Exchange, code: str, reason: str) -> None:
    ex.outcome, ex.code, ex.reason = "fault", code, reason


def _raiser(err: EmulatorError) -> Callable[..., Response]:
    def view(*_args, **_kwargs) -> Response:
        raise err

    return view


def _error_for(endpoint: str, effect: Effect, why: str) -> EmulatorError:
    """An API error in the endpoint's own envelope (the widget's endpoints report to onError)."""
    assert effect.error is not None  # called for an `error` effect only
    retry_after = effect.retry_after
    if retry_after is None and effect.error is ErrorCode.RATE_LIMIT_EXCEEDED:
        retry_after = DEFAULT_RATE_LIMIT_RETRY_S
    browser_code = effect.error not in REQUEST_ERROR_STATUS
    kind = ChallengeError if endpoint in CHALLENGE_ENDPOINTS and browser_code else RequestError
    return kind(effect.error, why, retry_after=retry_after)


# --- canned answers ------------------------------------------------------------------


def status_response(effect: Effect, endpoint: str) -> Response:
    """`status` with `body` json (the real envelope) | html (a gateway page) | empty | a string."""
    status, body = effect.status, effect.body
    assert status is not None  # called for a `status` effect only
    if body == "html":
        response = gateway_page(status)
    elif body == "empty":
        response = Response(b"", status=status)
    elif body == "json":
        response = Response(_json_envelope(status, endpoint, effect.retry_after), status=status,
                            mimetype="application/json")
    else:
        response = Response(body, status=status, mimetype="text/plain")
    if effect.retry_after is not None:
        response.headers["Retry-After"] = str(effect.retry_after)
    for name, value in effect.headers:
        response.headers[name] = value
    return response


def _json_envelope(status: int, endpoint: str, retry_after: int | None) -> str:
    if status < 400:
        return json.dumps(envelope.ok_body({}))
    return json.dumps(envelope.failure_body(envelope.error_for_status(status), status,
                                            validate=endpoint in VALIDATES, retry_after=retry_after))


def gateway_page(status: int) -> Response:
    """The HTML error page a load balancer in front of an API answers with (nginx's shape)."""
    try:
        phrase = GATEWAY_PHRASES.get(status) or http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    title = f"{status} {phrase}"
    page = (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
            "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
    return Response(page, status=status, mimetype="text/html")


# --- connection faults that answer nothing ---------------------------------------------


def _reset(ex: Exchange, why: str) -> Response:
    drain()
    sock = raw_socket()
    if sock is None:  # a WSGI server without a raw socket (the test client): the closest HTTP answer
        _note(ex, "connection_reset", why + ": connection reset (no raw socket here: an empty 502 instead)")
        return Response(b"", status=502)
    abandon(sock, rst=True)
    _note(ex, "connection_reset", why + ": connection reset (RST), no answer")
    return Response(b"", status=NO_ANSWER)


def _hang(rt: Runtime, ex: Exchange, conn: Connection, why: str) -> Response:
    drain()
    sock = raw_socket()
    if sock is None:
        rt.faults.sleep(conn.max_s)
        _note(ex, "connection_hang", why + f": connection hang (no raw socket here: a 504 after {conn.max_s:g} s)")
        return gateway_page(504)
    started = time.monotonic()
    client_left = wait_for_hangup(sock, conn.max_s)
    held = time.monotonic() - started
    abandon(sock, rst=False)
    ex.detail["held_s"] = round(held, 3)
    ending = "the client gave up" if client_left else f"max_s {conn.max_s:g} s, then closed without an answer"
    _note(ex, "connection_hang", f"{why}: connection hang, held {held:.1f} s until {ending}")
    return Response(b"", status=NO_ANSWER)

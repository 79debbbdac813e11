"""Control-plane routes for inspecting and steering state (docs/compatibility.md §14): apps, the request
journal and its blocking wait, token explanation, and the shared virtual clock.

Its own blueprint (registered by create_app) behind the control plane's guard."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request

from ..domain.explain import explain_token, iso
from ..domain.journal_filter import JournalFilter, find, page_cursor, parse_timeout, wait_for
from ..errors import ErrorCode, RequestError
from ..runtime import Runtime
from . import access
from .context import json_body, runtime

bp = Blueprint("control_state", __name__, url_prefix="/_emulator")
bp.before_request(access.guard)

MAX_TOKEN_CHARS = 4096
MAX_CLOCK_SECONDS = 10 * 365 * 86400  # ten years either way keeps every timestamp printable


@bp.get("/apps")
def apps() -> Response:
    listed = [app.to_dict() for app in runtime().apps]
    return jsonify({"apps": listed, "count": len(listed)})


@bp.get("/requests")
def requests_() -> Response:
    rt = runtime()
    f = JournalFilter.from_args(request.args, max_limit=rt.journal.capacity)
    return jsonify(_journal_answer(rt, f, lambda: find(rt.journal, f)))


@bp.get("/requests/wait")
def requests_wait() -> Response:
    """Long-poll: answer as soon as a matching entry with id > `after` exists, else 408 at `timeout`."""
    rt = runtime()
    f = JournalFilter.from_args(request.args, max_limit=rt.journal.capacity, extra=("timeout",))
    timeout = parse_timeout(request.args.get("timeout"))
    answer = _journal_answer(rt, f, lambda: wait_for(rt.journal, f, timeout))
    response = jsonify({**answer, "timed_out": not answer["requests"], "timeout": timeout})
    if not answer["requests"]:
        response.status_code = 408
    return response


@bp.get("/tokens/<path:token>")
def explain(token: str) -> Response:
    if len(token) > MAX_TOKEN_CHARS:
        raise RequestError(ErrorCode.INVALID_REQUEST, f"token is longer than {MAX_TOKEN_CHARS} characters")
    rt = runtime()
    return jsonify(explain_token(token, signer=rt.signer, apps=rt.apps, store=rt.store, journal=rt.journal,
                                 now=rt.clock.now()))


@bp.get("/clock")
def clock() -> Response:
    return jsonify(_clock_answer(runtime()))


@bp.put("/clock")
def set_clock() -> Response:
    rt = runtime()
    rt.clock.set_offset(_seconds(json_body(), "offset"))
    return jsonify(_clock_answer(rt))


@bp.post("/clock/advance")
def advance_clock() -> Response:
    rt = runtime()
    seconds = _seconds(json_body() or dict(request.args), "seconds")
    if abs(rt.clock.offset() + seconds) > MAX_CLOCK_SECONDS:  # each call is bounded; so is their sum
        raise RequestError(ErrorCode.INVALID_REQUEST,
                           f"advancing by {seconds:g} s would put the clock more than ten years from real time")
    rt.clock.advance(seconds)
    return jsonify(_clock_answer(rt))


def _journal_answer(rt: Runtime, f: JournalFilter, search: Callable[[], list[dict[str, Any]]]) -> dict[str, Any]:
    """Entries plus `latest_id`: pollers pass it back as `after` (domain/journal_filter.page_cursor,
    which needs the journal's number read before the search); a smaller value than last time means
    the journal was reset (ids restart at 1)."""
    before = rt.journal.latest_id()
    rows = search()
    return {"requests": rows, "count": len(rows), "latest_id": page_cursor(rt.journal, f, rows, before)}


def _clock_answer(rt: Runtime) -> dict[str, Any]:
    real = rt.clock.real()
    offset = rt.clock.offset()
    return {"offset": offset, "now": real + offset, "now_iso": iso(real + offset), "real_now": real,
            "real_iso": iso(real), "worker_pid": os.getpid()}


def _seconds(body: dict[str, Any], name: str) -> float:
    raw = body.get(name)
    if isinstance(raw, str):
        try:
            raw = float(raw)
        except ValueError:
            raise RequestError(ErrorCode.INVALID_REQUEST, f"{name} must be a number of seconds") from None
    if isinstance(raw, int) and not isinstance(raw, bool) and abs(raw) > MAX_CLOCK_SECONDS:
        raw = math.inf  # a huge integer: refused below, without float() overflowing
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise RequestError(ErrorCode.INVALID_REQUEST, f"{name} must be a number of seconds, e.g. {{\"{name}\": 301}}")
    if abs(raw) > MAX_CLOCK_SECONDS:
        raise RequestError(ErrorCode.INVALID_REQUEST, f"{name} must be within ±{MAX_CLOCK_SECONDS} seconds")
    return float(raw)

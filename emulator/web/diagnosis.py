"""GET /_emulator/diagnosis: the journal grouped into findings (see domain/diagnosis.py).

Its own blueprint under the control plane's prefix and admin-token guard; thin over the domain."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from ..domain.clock import iso
from ..domain.diagnosis import Lifetime, diagnose, journal_entries, parse_since
from ..errors import ErrorCode, RequestError
from ..runtime import Runtime
from . import access
from .context import runtime

bp = Blueprint("diagnosis", __name__, url_prefix="/_emulator")
bp.before_request(access.guard)  # errors are answered by web/answers.py, like the whole control plane

KNOWN_FILTERS = ("app_key", "since", "admin_token")
DEFAULT_TTL = 300


@bp.get("/diagnosis")
def diagnosis() -> Response:
    unknown = sorted(set(request.args) - set(KNOWN_FILTERS))
    if unknown:
        raise RequestError(ErrorCode.INVALID_REQUEST,
                           f"unknown filter(s) {', '.join(unknown)}; known: app_key, since")
    rt = runtime()
    app_key = request.args.get("app_key", "").strip() or None
    since = parse_since(request.args.get("since"))
    now = rt.clock.now()
    findings = diagnose(journal_entries(rt.journal), now=now, lifetime=_lifetime(rt), app_key=app_key, since=since)
    return jsonify({"findings": findings, "count": len(findings), "now": now, "now_iso": iso(now),
                    "app_key": app_key, "since": since})


def _lifetime(rt: Runtime) -> Lifetime:
    def lifetime(app_key: str | None) -> float:
        app = rt.apps.get(app_key)
        return float(app.pass_token_ttl if app else DEFAULT_TTL)

    return lifetime


"""The control plane /_emulator/... (docs/compatibility.md §14): plain JSON, never the CaptchaLa envelope."""

from __future__ import annotations

import hmac
import os
import time

from flask import Blueprint, Response, jsonify, request

from .. import __version__
from ..domain.journal import token_fingerprint
from ..domain.minting import MintRequest, mint
from ..domain.tokens import challenge_id
from ..errors import EmulatorError, ErrorCode, RequestError, StoreUnavailable
from .context import caller_ip, json_body, runtime

bp = Blueprint("control", __name__, url_prefix="/_emulator")


def control_error(status: int, error: str, message: str) -> Response:
    response = jsonify({"error": error, "message": message})
    response.status_code = status
    return response


@bp.before_request
def require_admin_token():
    """With --admin-token every control endpoint wants `Authorization: Bearer <token>`."""
    expected = runtime().settings.admin_token
    if not expected:
        return None
    given = request.headers.get("Authorization", "")
    token = given[7:] if given.lower().startswith("bearer ") else request.args.get("admin_token", "")
    if not hmac.compare_digest(token.encode(), expected.encode()):
        response = control_error(401, "unauthorized", "control plane needs Authorization: Bearer <admin token>")
        response.headers["WWW-Authenticate"] = 'Bearer realm="captchala-emulator"'
        return response
    return None


@bp.errorhandler(EmulatorError)
def domain_error(err: EmulatorError):
    status = err.status if isinstance(err, RequestError) else 400
    return control_error(status, err.code.value, err.reason)


@bp.errorhandler(StoreUnavailable)
def store_error(exc: StoreUnavailable):
    return control_error(503, ErrorCode.SERVICE_UNAVAILABLE.value, str(exc))


@bp.get("/health")
def health():
    rt = runtime()
    body = {"status": "ok", "version": __version__, "store": rt.store.url,
            "profile": rt.active_profile_name()}
    try:
        rt.ping()  # the store, and the signing secret shared through it
    except StoreUnavailable as exc:
        body.update(status="unavailable", error=str(exc))
        response = jsonify(body)
        response.status_code = 503
        return response
    return jsonify(body)


@bp.post("/reset")
def reset():
    rt = runtime()
    app_key = request.args.get("app_key") or None
    if app_key is not None and rt.apps.get(app_key) is None:
        return control_error(404, "unknown_app", f"no app with key {app_key!r}")
    rt.reset(app_key)
    return jsonify({"reset": True, "app_key": app_key})


@bp.post("/pass-tokens")
def mint_pass_token():
    rt = runtime()
    req = MintRequest.from_body(json_body())
    app = rt.apps.get(req.app_key)
    if app is None:
        return control_error(404, "unknown_app", f"no app with key {req.app_key!r}")
    now = rt.clock.now()
    token = mint(req, app, signer=rt.signer, now=now)
    raw = rt.signer.encode(token)
    _journal_mint(rt, token, raw, now)
    return jsonify({
        "pass_token": raw, "challenge_id": challenge_id(token),
        "expires_in": int(round(token.expires_at - now)), "kind": token.kind.label, "token_id": token.token_id,
        "app_key": app.app_key, "action": token.claims["act"],
    }), 201


def _journal_mint(rt, token, raw: str, now: float) -> None:
    """Minting is part of a token's history (explain), so it is journaled too."""
    rt.journal.record({
        "ts": round(time.time(), 6), "virtual_ts": round(now, 3), "endpoint": "mint",
        "method": "POST", "path": request.path, "caller_ip": caller_ip(), "app_key": token.app_key,
        "token_fp": token_fingerprint(raw), "token_id": token.token_id, "token_kind": token.kind.label,
        "action": token.claims["act"], "outcome": "minted", "code": None,
        "reason": f"minted {token.kind.label} token through the control plane", "fault": None, "status": 201,
        "duration_ms": 0.0, "worker_pid": os.getpid(),
    })

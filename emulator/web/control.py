"""The control plane /_emulator/... (docs/compatibility.md §14): plain JSON, never the CaptchaLa envelope."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from .. import __version__
from ..domain.minting import MintRequest, mint
from ..domain.tokens import Token, challenge_id
from ..errors import ControlCode, ControlError, ErrorCode, RequestError, StoreUnavailable
from ..runtime import Runtime
from . import access
from .context import json_body, runtime
from .exchange import Exchange, record

bp = Blueprint("control", __name__, url_prefix="/_emulator")
bp.before_request(access.guard)  # Host, cross-site writes, --admin-token


@bp.get("/health")
def health():
    rt = runtime()
    body: dict[str, object] = {"status": "ok", "version": __version__, "store": rt.store.url,
                               "profile": rt.active_profile_name()}
    listening = rt.workers_listening() if rt.workers_listening else None
    if listening is not None:
        body["workers"] = {"listening": listening, "expected": rt.settings.workers}
    try:
        rt.ping()  # the store, and the signing secret shared through it
    except StoreUnavailable as exc:
        body.update(status="unavailable", error=str(exc))
        return _unready(body)
    if listening is not None and listening < rt.settings.workers:
        # each worker listens on a socket of its own: a client that started its load before every
        # worker had one would keep all its connections on the others for good
        body["status"] = "starting"
        return _unready(body)
    return jsonify(body)


def _unready(body: dict) -> Response:
    response = jsonify(body)
    response.status_code = 503
    return response


@bp.post("/reset")
def reset():
    rt = runtime()
    app_key = request.args.get("app_key")
    if app_key is not None and not app_key.strip():  # an empty variable in a script: never "everything"
        raise RequestError(ErrorCode.INVALID_REQUEST, "app_key is empty: leave it out to reset every app")
    if app_key is not None and rt.apps.get(app_key) is None:
        raise unknown_app(app_key)
    rt.reset(app_key)
    return jsonify({"reset": True, "app_key": app_key})


@bp.post("/pass-tokens")
def mint_pass_token():
    rt = runtime()
    req = MintRequest.from_body(json_body())
    app = rt.apps.get(req.app_key)
    if app is None:
        raise unknown_app(req.app_key)
    ex = Exchange.begin(rt, "mint")
    ex.vts = now = rt.clock.now()  # a mint needs the store: StoreUnavailable is a 503, never a token
    token = mint(req, app, signer=rt.signer, now=now)
    raw = rt.signer.encode(token)
    _journal_mint(rt, ex, token, raw)
    return jsonify({
        "pass_token": raw, "challenge_id": challenge_id(token),
        "expires_in": int(round(token.expires_at - now)), "kind": token.kind.label, "token_id": token.token_id,
        "app_key": app.app_key, "action": token.claims["act"],
    }), 201


def unknown_app(app_key: str) -> ControlError:
    return ControlError(ControlCode.UNKNOWN_APP, 404, f"no app with key {app_key!r}")


def _journal_mint(rt: Runtime, ex: Exchange, token: Token, raw: str) -> None:
    """Minting is part of a token's history (explain): journaled like every API request."""
    ex.app_key, ex.outcome, ex.status = token.app_key, "minted", 201
    ex.set_verified_token(raw, token)
    ex.reason = f"minted {token.kind.label} token through the control plane"
    record(rt, ex, log=False)

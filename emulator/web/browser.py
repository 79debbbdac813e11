"""The browser side (docs/compatibility.md §12): the stub loader, SDK and CSS, and the widget's challenge API.

Every route here answers any origin (the page under test never shares the emulator's origin)
and tells browsers to revalidate, so an edited SDK or a restarted emulator is picked up."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, request, send_from_directory

from ..domain.challenges import (
    InitRequest,
    OfflineRequest,
    SolveRequest,
    find_app,
    init_challenge,
    issue_offline_token,
    solve_challenge,
)
from ..domain.tokens import MAX_REFERER
from ..runtime import Runtime
from . import envelope
from .context import json_body
from .exchange import Exchange, api_call

bp = Blueprint("browser", __name__)

STATIC_DIR = Path(__file__).parent / "static"
EXPOSED_HEADERS = "X-Captchala-Emulator-Reason, X-Captchala-Emulator-Fault"


@bp.after_request
def cors_and_caching(response: Response) -> Response:
    """Permissive CORS (also for preflights) and development-friendly caching."""
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = (
        request.headers.get("Access-Control-Request-Headers") or "Content-Type")
    response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    response.headers["Access-Control-Max-Age"] = "600"
    if request.headers.get("Access-Control-Request-Private-Network"):
        response.headers["Access-Control-Allow-Private-Network"] = "true"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    is_static = request.method == "GET"
    response.headers["Cache-Control"] = "no-cache" if is_static else "no-store"
    return response


def _static(name: str, mimetype: str) -> Response:
    response = send_from_directory(STATIC_DIR, name, mimetype=mimetype, max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/captchala-loader.js")
@api_call("loader")
def loader(rt: Runtime, ex: Exchange) -> Response:
    return _static("captchala-loader.js", "text/javascript")


@bp.get("/captchala.js")
@api_call("sdk")
def sdk(rt: Runtime, ex: Exchange) -> Response:
    return _static("captchala.js", "text/javascript")


@bp.get("/captchala.css")
@api_call("sdk")
def stylesheet(rt: Runtime, ex: Exchange) -> Response:
    return _static("captchala.css", "text/css")


@bp.post("/v1/challenge/init")
@api_call("challenge_init")
def challenge_init(rt: Runtime, ex: Exchange) -> Response:
    req = InitRequest.from_fields(json_body(ex.request), ex.request.headers.get("Referer"))
    ex.app_key, ex.action = req.app_key or None, req.action
    ex.set_token(req.server_token, rt)
    ex.detail.update(product=req.product, page=req.referer and req.referer[:MAX_REFERER])  # even if refused
    app = find_app(rt.apps, req.app_key)
    ch, data, ex.reason = init_challenge(req, app, signer=rt.signer, codec=rt.codec, store=rt.store,
                                         now=ex.vts, browser_ip=ex.caller_ip)
    ex.action = ch.action
    ex.detail["challenge_id"] = ch.public_id
    return envelope.ok(data)


@bp.post("/v1/challenge/solve")
@api_call("challenge_solve")
def challenge_solve(rt: Runtime, ex: Exchange) -> Response:
    req = SolveRequest.from_fields(json_body(ex.request), ex.request.headers.get("Referer"))
    ch = rt.codec.decode(req.challenge_id)
    ex.app_key, ex.action, ex.detail["challenge_id"] = ch.app_key, ch.action, ch.public_id
    app = find_app(rt.apps, ch.app_key)
    result = solve_challenge(ch, app, referer=req.referer, signer=rt.signer, store=rt.store, now=ex.vts,
                             solver_ip=ex.caller_ip, request_key=ex.key, force_kind=ex.forced_kind)
    ex.reason = result.reason
    ex.set_verified_token(result.data["pass_token"], result.token)
    ex.detail["token_expires_at"] = result.token.expires_at  # diagnosis: the token's lifetime
    return envelope.ok(result.data)


@bp.post("/v1/challenge/offline")
@api_call("challenge_offline")
def challenge_offline(rt: Runtime, ex: Exchange) -> Response:
    """Emulator choice: the "bypass worker" the SDK falls back to when init/solve are down."""
    req = OfflineRequest.from_fields(json_body(ex.request), ex.request.headers.get("Referer"))
    ex.app_key, ex.action = req.app_key or None, req.action
    app = find_app(rt.apps, req.app_key)
    token, data, ex.reason = issue_offline_token(req, app, signer=rt.signer, store=rt.store, now=ex.vts,
                                                 solver_ip=ex.caller_ip)
    ex.set_verified_token(data["pass_token"], token)
    ex.detail["token_expires_at"] = token.expires_at
    return envelope.ok(data)

"""The real CaptchaLa server API (docs/compatibility.md §4): thin views over the pure domain."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response

from ..domain.apps import App
from ..domain.moderation import moderate_input, moderate_text
from ..domain.ratelimit import check_rate_limit
from ..domain.server_tokens import IssueRequest, issue_server_token
from ..domain.validation import ValidateRequest, validate, with_legacy_fields
from ..errors import ErrorCode, RequestError
from ..runtime import Runtime
from . import envelope
from .context import form_or_json_body, json_body
from .exchange import Exchange, api_call

bp = Blueprint("api", __name__)


def authenticate(rt: Runtime, ex: Exchange, body: dict | None = None) -> App:
    """X-App-Key / X-App-Secret checks in the contract's order, before the body is read.

    The moderation endpoints also carry the pair in the body (docs/compatibility.md §2); headers win."""
    environ = ex.request.environ  # headers.get(name) without building werkzeug's header view
    key = environ.get("HTTP_X_APP_KEY") or (body or {}).get("app_key")
    secret = environ.get("HTTP_X_APP_SECRET") or (body or {}).get("app_secret")
    ex.app_key = key if isinstance(key, str) else None
    app = rt.apps.get(ex.app_key)
    if app is None:
        raise RequestError(ErrorCode.INVALID_APP_KEY, _key_reason(rt, ex, key))
    if not app.secret_matches(secret if isinstance(secret, str) else None):
        raise RequestError(ErrorCode.INVALID_APP_SECRET, _secret_reason(rt, app, secret))
    if app.disabled:
        raise RequestError(ErrorCode.APP_DISABLED, f"app {app.app_key} is disabled")
    return app


def _key_reason(rt: Runtime, ex: Exchange, key) -> str:
    """Why the key is unknown, without ever repeating a secret sent in the key's place."""
    if not key:
        return "X-App-Key header is missing"
    if isinstance(key, str) and is_known_secret(rt, key):
        ex.app_key = None  # neither the journal nor the log line may keep it
        return "X-App-Key holds a secret of this emulator (not shown): send the app key there"
    return f"no app with key {str(key)[:64]!r}"


def is_known_secret(rt: Runtime, value: str) -> bool:
    """An app secret or the admin token (constant-time comparisons)."""
    admin = rt.settings.admin_token
    if admin and hmac.compare_digest(value.encode(), admin.encode()):
        return True
    return rt.apps.owner_of_secret(value) is not None


def _secret_reason(rt: Runtime, app: App, secret) -> str:
    if not secret:
        return "X-App-Secret header is missing"
    owner = rt.apps.owner_of_secret(secret) if isinstance(secret, str) else None
    if owner is not None:
        return f"secret belongs to app {owner.app_key}, not {app.app_key}"
    return f"secret does not match app {app.app_key}"


def _validate(rt: Runtime, ex: Exchange, *, backup: bool = False, token_field: str = "pass_token") -> Response:
    app = authenticate(rt, ex)
    if not backup:
        check_rate_limit(rt.store, app, ex.vts)
    req = ValidateRequest.from_body(json_body(ex.request), token_field)
    if req.client_ip:
        ex.detail["client_ip"] = req.client_ip
    if req.keep_token:
        ex.detail["keep_token"] = True
    try:
        result = validate(req, app, signer=rt.signer, store=rt.store, now=ex.vts, request_key=ex.key,
                          caller_ip=ex.caller_ip, backup=backup, forced=ex.forced_result)
    except Exception:
        ex.set_token(req.pass_token, rt)  # an unverified look at the claims, for the journal
        raise
    ex.set_verified_token(req.pass_token, result.token)  # no second decode on the hot path (bench: ~10 %)
    ex.reason = result.reason
    ex.outcome = "degraded" if result.data.get("degraded") else "valid"
    legacy = app.legacy_fields or rt.settings.legacy_fields
    return envelope.ok(with_legacy_fields(result.data) if legacy else result.data)


@bp.post("/v1/validate")
@api_call("validate")
def validate_view(rt: Runtime, ex: Exchange) -> Response:
    return _validate(rt, ex)


@bp.post("/api/validate")
@api_call("backup_validate")
def backup_validate_view(rt: Runtime, ex: Exchange) -> Response:
    return _validate(rt, ex, backup=True)


@bp.post("/v1/challenge/verify")
@api_call("validate")
def verify_alias_view(rt: Runtime, ex: Exchange) -> Response:
    """Alias seen in vendor prose (docs/compatibility.md §4): validate with the field `token`."""
    return _validate(rt, ex, token_field="token")


@bp.post("/v1/server/challenge/issue")
@bp.post("/v1/server-token/issue", endpoint="issue_alias_view")
@api_call("issue")
def issue_view(rt: Runtime, ex: Exchange) -> Response:
    app = authenticate(rt, ex)
    check_rate_limit(rt.store, app, ex.vts)
    req = IssueRequest.from_fields(form_or_json_body(ex.request))
    ex.action = req.action
    token, data, reason = issue_server_token(req, app, signer=rt.signer, now=ex.vts,
                                             max_ttl=rt.settings.max_server_token_ttl)
    ex.set_verified_token(data["server_token"], token)
    ex.detail.update(ttl=data["expires_in"], max_uses=req.max_uses, binding_ip=req.binding_ip)  # for timelines
    ex.reason = reason
    return envelope.ok(data, "success")


@bp.post("/v1/moderation/check")
@api_call("moderation")
def moderation_check_view(rt: Runtime, ex: Exchange) -> Response:
    app, body = _moderation_auth(rt, ex)
    data = moderate_input(app, body.get("input"))
    ex.reason = "flagged" if data["flagged"] else "not flagged"
    return envelope.ok(data)


@bp.post("/v1/moderation/text")
@api_call("moderation")
def moderation_text_view(rt: Runtime, ex: Exchange) -> Response:
    app, body = _moderation_auth(rt, ex)
    data = moderate_text(app, body.get("text"))
    ex.reason = "flagged" if data["flagged"] else "not flagged"
    return envelope.ok(data)


def _moderation_auth(rt: Runtime, ex: Exchange) -> tuple[App, dict]:
    """Headers first (like every endpoint); the body's app_key/app_secret only when absent."""
    if ex.request.headers.get("X-App-Key"):
        app = authenticate(rt, ex)
        return app, json_body(ex.request)
    body = json_body(ex.request)
    return authenticate(rt, ex, body), body

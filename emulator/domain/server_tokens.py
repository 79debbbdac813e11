"""Pure server-token rules: issuing an sct_ (docs/compatibility.md §4) and redeeming one at challenge init."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ChallengeError, ErrorCode, RequestError
from ..store.base import Expired, Store
from .apps import App
from .tokens import MAX_UID, Kind, Token, TokenSigner
from .validation import normalize_ip

DEFAULT_SERVER_TOKEN_TTL = 300
MAX_ACTION_LENGTH = 64
MAX_USES_LIMIT = 100
USE_KEY_PREFIX = "sct:"


def use_key(token_id: str) -> str:
    """The store key under which a server token's uses are counted (the one definition)."""
    return USE_KEY_PREFIX + token_id


@dataclass(frozen=True)
class IssueRequest:
    action: str
    ttl: int = DEFAULT_SERVER_TOKEN_TTL
    max_uses: int = 1
    binding_ip: str | None = None
    bind_uid: str | None = None

    @classmethod
    def from_fields(cls, body: Mapping[str, Any]) -> IssueRequest:
        """Parse JSON or form fields (form values arrive as strings)."""
        action = body.get("action")
        if not isinstance(action, str) or not action.strip():
            raise RequestError(ErrorCode.INVALID_ACTION, "action is required and must be a non-empty string")
        action = action.strip()
        if len(action) > MAX_ACTION_LENGTH:
            raise RequestError(ErrorCode.INVALID_ACTION, f"action is longer than {MAX_ACTION_LENGTH} characters")
        ttl = _int_field(body, "ttl", DEFAULT_SERVER_TOKEN_TTL)
        max_uses = _int_field(body, "max_uses", 1)
        ip = body.get("binding_ip") or body.get("bind_ip")
        if ip is not None and not isinstance(ip, str):
            raise RequestError(ErrorCode.INVALID_REQUEST, "binding_ip must be a string")
        uid = body.get("bind_uid")
        if uid in ("", None):
            uid = None
        elif not isinstance(uid, str):
            raise RequestError(ErrorCode.INVALID_REQUEST, "bind_uid must be a string")
        elif len(uid) > MAX_UID:
            raise RequestError(ErrorCode.INVALID_REQUEST, f"bind_uid is longer than {MAX_UID} characters")
        return cls(action, ttl, max_uses, normalize_ip(ip, "binding_ip") if ip else None, uid)


def _int_field(body: Mapping[str, Any], name: str, default: int) -> int:
    raw = body.get(name)
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool):
        raise RequestError(ErrorCode.INVALID_REQUEST, f"{name} must be an integer")
    if isinstance(raw, str):
        try:
            raw = int(raw.strip())
        except ValueError:
            raise RequestError(ErrorCode.INVALID_REQUEST, f"{name} must be an integer") from None
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if not isinstance(raw, int):
        raise RequestError(ErrorCode.INVALID_REQUEST, f"{name} must be an integer")
    return raw


def issue_server_token(req: IssueRequest, app: App, *, signer: TokenSigner, now: float,
                       max_ttl: int) -> tuple[Token, dict[str, Any], str]:
    """Mint an sct_; returns the token, the wire data and a human reason."""
    if req.ttl < 1:
        raise RequestError(ErrorCode.INVALID_REQUEST, "ttl must be at least 1 second")
    if not 1 <= req.max_uses <= MAX_USES_LIMIT:
        raise RequestError(ErrorCode.INVALID_REQUEST, f"max_uses must be between 1 and {MAX_USES_LIMIT}")
    ttl = min(req.ttl, max_ttl)
    token = signer.mint_server(app_key=app.app_key, action=req.action, now=now, ttl=ttl,
                               max_uses=req.max_uses, binding_ip=req.binding_ip, bind_uid=req.bind_uid)
    data = {"server_token": signer.encode(token), "expires_in": ttl, "issued_at": int(now)}
    clamped = f" (ttl {req.ttl} clamped to {max_ttl})" if ttl != req.ttl else ""
    return token, data, f"issued sct_ for action {req.action!r}, {req.max_uses} use(s), ttl {ttl} s{clamped}"


def redeem_server_token(raw: str | None, app: App, *, signer: TokenSigner, store: Store, now: float,
                        browser_ip: str) -> Token | None:
    """The server-token checks of challenge init (docs/compatibility.md §12), counting a use in the store."""
    token = check_server_token(raw, app, signer=signer, now=now, browser_ip=browser_ip)
    if token is None:
        return None
    claims = token.claims
    uses = store.use(use_key(token.token_id), scope=app.app_key, expires_at=token.expires_at)
    if isinstance(uses, Expired):
        raise ChallengeError(ErrorCode.SERVER_TOKEN_EXPIRED, "server token expired at or before the store's purge "
                                                             "horizon: never redeemed again, whatever the clock")
    if uses > int(claims.get("max", 1)):
        raise ChallengeError(ErrorCode.SERVER_TOKEN_EXHAUSTED,
                             f"server token used {uses} times, max_uses is {claims.get('max', 1)}")
    return token


def check_server_token(raw: str | None, app: App, *, signer: TokenSigner, now: float,
                       browser_ip: str) -> Token | None:
    """Every server-token check but the use count: required, signed, this app's, alive, bound IP."""
    if not raw:
        if app.server_token_required:
            raise ChallengeError(ErrorCode.SERVER_TOKEN_REQUIRED, f"app {app.app_key} requires a serverToken")
        return None
    kind, claims, signed = signer.peek(raw)
    if kind is not Kind.SERVER or not signed or claims is None or "jti" not in claims:
        raise ChallengeError(ErrorCode.SERVER_TOKEN_INVALID, "not a server token signed by this emulator")
    token = Token(kind, claims)
    if token.app_key != app.app_key:
        raise ChallengeError(ErrorCode.SERVER_TOKEN_APP_MISMATCH,
                             f"server token was issued for app {token.app_key}, not {app.app_key}")
    if now >= token.expires_at:
        raise ChallengeError(ErrorCode.SERVER_TOKEN_EXPIRED,
                             f"server token expired {int(now - token.expires_at)} s ago")
    bound = claims.get("bip")
    if bound and bound != browser_ip:
        raise ChallengeError(ErrorCode.SERVER_TOKEN_BINDING_MISMATCH,
                             f"server token is bound to {bound}, redeemed from {browser_ip}")
    return token

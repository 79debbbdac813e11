"""Pure browser-challenge rules (docs/compatibility.md §12): init, solve and the offline bypass worker."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadData

from ..errors import ChallengeError, ErrorCode, RequestError
from ..store.base import Expired, Store
from .apps import App, AppRegistry
from .journal import consumer_number
from .server_tokens import MAX_ACTION_LENGTH, check_server_token, redeem_server_token
from .tokens import MAX_REFERER, Kind, SignedCodec, Token, TokenSigner, new_id

CHALLENGE_TTL = 120  # emulator choice: how long a widget may sit before solving (s)
PRODUCTS = ("popup", "float", "embed", "bind")
MAX_LANG = 35
MAX_REFERER_INPUT = 8192
CHALLENGE_PREFIX = "ch_"
SOLVABLE_KINDS = (Kind.PASS, Kind.DEGRADED)


def find_app(apps: AppRegistry, app_key: Any) -> App:
    """The app named by the browser's `appKey`, refusing unknown and disabled apps."""
    if not isinstance(app_key, str) or not app_key:
        raise RequestError(ErrorCode.INVALID_APP_KEY, "app_key is missing")
    app = apps.get(app_key)
    if app is None:
        raise RequestError(ErrorCode.INVALID_APP_KEY, f"no app with key {app_key[:64]!r}")
    if app.disabled:
        raise RequestError(ErrorCode.APP_DISABLED, f"app {app.app_key} is disabled")
    return app


def _optional_str(body: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = body.get(name)
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise RequestError(ErrorCode.INVALID_REQUEST, f"{name} must be a string")
    if len(value) > limit:
        raise RequestError(ErrorCode.INVALID_REQUEST, f"{name} is longer than {limit} characters")
    return value


def _referer(body: Mapping[str, Any], header: str | None) -> str | None:
    """The page URL: the SDK's `referer` field, else the Referer header (often origin-only)."""
    return _optional_str(body, "referer", MAX_REFERER_INPUT) or (header or None)


@dataclass(frozen=True)
class InitRequest:
    """What the widget sends to POST /v1/challenge/init."""

    app_key: str
    action: str = "default"
    server_token: str | None = None
    product: str = "popup"
    lang: str | None = None
    referer: str | None = None

    @classmethod
    def from_fields(cls, body: Mapping[str, Any], referer_header: str | None = None) -> InitRequest:
        app_key = body.get("app_key")
        action = body.get("action")
        if action in (None, ""):
            action = "default"
        if not isinstance(action, str) or not action.strip() or len(action) > MAX_ACTION_LENGTH:
            raise RequestError(ErrorCode.INVALID_ACTION, f"action must be 1 to {MAX_ACTION_LENGTH} characters")
        product = body.get("product") or "popup"
        if product not in PRODUCTS:
            raise RequestError(ErrorCode.INVALID_REQUEST,
                               f"product {str(product)[:32]!r} is not one of {', '.join(PRODUCTS)}")
        return cls(app_key if isinstance(app_key, str) else "", action.strip(),
                   _optional_str(body, "server_token", 4096), product,
                   _optional_str(body, "lang", MAX_LANG), _referer(body, referer_header))


@dataclass(frozen=True)
class SolveRequest:
    """What the widget sends to POST /v1/challenge/solve (`answer` is accepted and ignored)."""

    challenge_id: str
    referer: str | None = None

    @classmethod
    def from_fields(cls, body: Mapping[str, Any], referer_header: str | None = None) -> SolveRequest:
        challenge = body.get("challenge_id")
        if not isinstance(challenge, str) or not challenge:
            raise RequestError(ErrorCode.INVALID_REQUEST, "challenge_id is required")
        return cls(challenge, _referer(body, referer_header))


@dataclass(frozen=True)
class OfflineRequest:
    """What the widget sends to the bypass worker when the main API is down (emulator choice)."""

    app_key: str
    action: str = "default"
    server_token: str | None = None
    referer: str | None = None

    @classmethod
    def from_fields(cls, body: Mapping[str, Any], referer_header: str | None = None) -> OfflineRequest:
        init = InitRequest.from_fields({**body, "product": None}, referer_header)
        return cls(init.app_key, init.action, init.server_token, init.referer)


@dataclass(frozen=True)
class Challenge:
    """One widget's challenge; it travels signed inside its id, so any worker can solve it."""

    id: str
    app_key: str
    action: str
    issued_at: float
    expires_at: float
    uid: str | None = None
    referer: str | None = None

    @property
    def public_id(self) -> str:
        """The id validate reports as `challenge_id` (and onSuccess as `challengeId`)."""
        return CHALLENGE_PREFIX + self.id


class ChallengeCodec:
    """Signs challenges as `ch_<id>.<payload>.<sig>` with their own salt, so no token passes as one."""

    def __init__(self, secret: str):
        self._codec = SignedCodec(secret, salt="captchala-emulator/challenge")

    def encode(self, ch: Challenge) -> str:
        claims = {"id": ch.id, "app": ch.app_key, "act": ch.action, "iat": round(ch.issued_at, 3),
                  "exp": round(ch.expires_at, 3), "uid": ch.uid, "ref": ch.referer}
        payload = self._codec.dumps({k: v for k, v in claims.items() if v is not None})
        return f"{ch.public_id}.{payload}"

    def decode(self, raw: str) -> Challenge:
        head, _, payload = raw.partition(".")
        try:
            claims = self._codec.loads(payload) if head.startswith(CHALLENGE_PREFIX) else None
        except BadData:
            claims = None
        if not isinstance(claims, dict) or CHALLENGE_PREFIX + str(claims.get("id")) != head:
            raise RequestError(ErrorCode.INVALID_REQUEST,
                               "challenge_id is not a challenge issued by this emulator (garbled or forged)")
        return Challenge(claims["id"], claims["app"], claims["act"], float(claims["iat"]), float(claims["exp"]),
                         claims.get("uid"), claims.get("ref"))


def widget_error(app: App) -> ErrorCode:
    """The onError code of a `fail` widget; an unknown configured code falls back to invalid_token."""
    try:
        return ErrorCode(app.widget.error)
    except ValueError:
        return ErrorCode.INVALID_TOKEN


def widget_data(app: App) -> dict[str, Any]:
    """How the widget behaves for this app (click / auto / fail / never, and its delay)."""
    return {"mode": app.widget.solve, "delay_ms": app.widget.delay_ms}


def init_challenge(req: InitRequest, app: App, *, signer: TokenSigner, codec: ChallengeCodec, store: Store,
                   now: float, browser_ip: str) -> tuple[Challenge, dict[str, Any], str]:
    """Check the app and the server token, then hand out a signed challenge (docs/compatibility.md §12).

    With a server token the challenge takes the sct_'s action and `bind_uid`: it was issued for them."""
    sct = redeem_server_token(req.server_token, app, signer=signer, store=store, now=now, browser_ip=browser_ip)
    action = sct.claims["act"] if sct else req.action
    uid = sct.claims.get("uid") if sct else None
    referer = req.referer[:MAX_REFERER] if req.referer else None
    ch = Challenge(new_id(), app.app_key, action, now, now + CHALLENGE_TTL, uid, referer)
    data = {"challenge_id": codec.encode(ch), "expires_in": CHALLENGE_TTL, "action": action,
            "product": req.product, **widget_data(app)}
    via = f" with sct_ {sct.token_id}" if sct else ""
    return ch, data, f"challenge {ch.public_id} for action {action!r}{via}, widget {app.widget.solve}"


@dataclass(frozen=True)
class SolveResult:
    challenge: Challenge
    token: Token
    data: dict[str, Any]
    reason: str


def solve_challenge(ch: Challenge, app: App, *, referer: str | None, signer: TokenSigner, store: Store,
                    now: float, solver_ip: str, request_key: str = "", force_kind: Kind | None = None) -> SolveResult:
    """Solve a challenge at most once and mint its pass token (dg_ once the app's quota is spent).

    `referer` is the page URL at solve time (else the one given at init); `force_kind` (None or
    Kind.DEGRADED) lets a fault rule force a degraded token."""
    if force_kind not in (None, *SOLVABLE_KINDS):
        raise ValueError(f"force_kind must be None or one of {SOLVABLE_KINDS}, not {force_kind!r}")
    if now >= ch.expires_at:
        raise ChallengeError(ErrorCode.CHALLENGE_EXPIRED, f"challenge {ch.public_id} expired "
                                                          f"{int(now - ch.expires_at)} s ago "
                                                          f"(lifetime {CHALLENGE_TTL} s)")
    if app.widget.solve == "never":
        raise ChallengeError(ErrorCode.CHALLENGE_EXPIRED, f"app {app.app_key}'s widget never solves")
    record = {"at": now, "request_key": request_key, "caller_ip": solver_ip}
    earlier = store.consume("challenge:" + ch.id, scope=app.app_key, expires_at=ch.expires_at, record=record)
    if isinstance(earlier, Expired):
        raise ChallengeError(ErrorCode.CHALLENGE_EXPIRED, f"challenge {ch.public_id} expired at or before the store's "
                                                          "purge horizon (never solvable again, whatever the clock)")
    if earlier is not None:
        number = consumer_number(store, earlier)
        raise ChallengeError(ErrorCode.CHALLENGE_EXPIRED, f"challenge {ch.public_id} was already solved"
                                                          + (f" by request #{number}" if number else ""))
    if app.widget.solve == "fail":
        raise ChallengeError(widget_error(app), f"app {app.app_key}'s widget always fails")
    kind, why = force_kind or _quota_kind(app, store), ""
    if kind is Kind.DEGRADED:
        token = signer.mint_degraded(app_key=app.app_key, action=ch.action, now=now)
        why = " (forced by a fault rule)" if force_kind else f" (quota of {app.quota} solves spent)"
    else:
        token = signer.mint_pass(app_key=app.app_key, action=ch.action, now=now, ttl=app.pass_token_ttl,
                                 client_ip=solver_ip, referer=referer or ch.referer, uid=ch.uid,
                                 risk_score=app.risk_score,
                                 challenge=ch.id)
    data = {"pass_token": signer.encode(token), "challenge_id": ch.public_id, "action": ch.action,
            "expires_in": int(round(token.expires_at - now)), "type": token.kind.label}
    return SolveResult(ch, token, data, f"solved {ch.public_id}: {token.kind.label} token{why}")


def _quota_kind(app: App, store: Store) -> Kind:
    """Count this solve against the app's quota (shared by every worker)."""
    if app.quota is None:
        return Kind.PASS
    solves = store.incr(f"quota:{app.app_key}", scope=app.app_key)
    return Kind.DEGRADED if solves > app.quota else Kind.PASS


def issue_offline_token(req: OfflineRequest, app: App, *, signer: TokenSigner, store: Store, now: float,
                        solver_ip: str) -> tuple[Token, dict[str, Any], str]:
    """The bypass worker: an offline_ token (only /api/validate accepts it) when the main API is down.

    It keeps the app's rules like init and solve do: a widget that never solves or always fails,
    a required, valid, unexpired, IP-bound server token, and the quota (spent: a dg_ token).
    It does not count a server-token use (the bypass worker has no shared counter)."""
    if app.widget.solve == "never":
        raise ChallengeError(ErrorCode.CHALLENGE_EXPIRED, f"app {app.app_key}'s widget never solves")
    if app.widget.solve == "fail":
        raise ChallengeError(widget_error(app), f"app {app.app_key}'s widget always fails")
    sct = check_server_token(req.server_token, app, signer=signer, now=now, browser_ip=solver_ip)
    action = sct.claims["act"] if sct else req.action
    if _quota_kind(app, store) is Kind.DEGRADED:
        token = signer.mint_degraded(app_key=app.app_key, action=action, now=now)
        why = f"dg_ token for action {action!r} (quota of {app.quota} solves spent)"
    else:
        token = signer.mint_pass(app_key=app.app_key, action=action, now=now, ttl=app.pass_token_ttl,
                                 kind=Kind.OFFLINE, client_ip=solver_ip, referer=req.referer,
                                 uid=sct.claims.get("uid") if sct else None, risk_score=app.risk_score)
        why = f"offline_ token for action {action!r} (main API unreachable from the widget)"
    data = {"pass_token": signer.encode(token), "challenge_id": CHALLENGE_PREFIX + token.token_id,
            "action": action, "expires_in": int(round(token.expires_at - now)), "type": token.kind.label,
            **widget_data(app)}
    return token, data, why

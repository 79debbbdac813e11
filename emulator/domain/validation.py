"""Pure validate logic (docs/compatibility.md §11): the checks in their fixed order, each with its code.

No Flask here: the caller passes the parsed request, the app, the signer, the store and
the virtual `now`; the answer is the wire `data` plus a human reason for the journal."""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from typing import Any

from ..errors import ErrorCode, RequestError, TokenRejected
from ..store.base import Expired, Record, Store
from .apps import App
from .journal import consumer_number
from .tokens import Kind, Token, TokenSigner, challenge_id

ALL_PASS_KINDS = (Kind.PASS, Kind.DEGRADED, Kind.OFFLINE)  # offline_ is refused at main by _load


@dataclass(frozen=True)
class ValidateRequest:
    pass_token: str
    keep_token: bool = False
    client_ip: str | None = None

    @classmethod
    def from_body(cls, body: dict[str, Any], token_field: str = "pass_token") -> ValidateRequest:
        token = body.get(token_field)
        if token is None:
            token = ""
        if not isinstance(token, str):
            raise RequestError(ErrorCode.INVALID_REQUEST, f"{token_field} must be a string")
        keep = body.get("keep_token", False)
        if keep is None:
            keep = False
        if not isinstance(keep, bool):
            raise RequestError(ErrorCode.INVALID_REQUEST, "keep_token must be a boolean")
        client_ip = body.get("client_ip")
        if client_ip in ("", None):
            client_ip = None
        elif not isinstance(client_ip, str):
            raise RequestError(ErrorCode.INVALID_REQUEST, "client_ip must be a string")
        else:
            client_ip = normalize_ip(client_ip, "client_ip")
        return cls(token.strip(), keep, client_ip)


@dataclass
class ValidateResult:
    data: dict[str, Any]
    reason: str
    token: Token


def normalize_ip(value: str, name: str) -> str:
    """Parse an IP (IPv4-mapped IPv6 becomes IPv4) or refuse the request."""
    try:
        ip = ipaddress.ip_address(value.strip())
    except ValueError:
        raise RequestError(ErrorCode.INVALID_REQUEST, f"{name} {value[:64]!r} is not an IP address") from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return str(ip)


def validate(req: ValidateRequest, app: App, *, signer: TokenSigner, store: Store, now: float,
             request_key: str, caller_ip: str, backup: bool = False,
             forced: ErrorCode | None = None) -> ValidateResult:
    """Run the checks of docs/compatibility.md §11 in order; raise TokenRejected for a token-level failure."""
    if not req.pass_token:
        raise TokenRejected(ErrorCode.EMPTY_TOKEN, "pass_token is empty or missing")
    token = _load(req.pass_token, app, signer, backup)
    if forced is not None:
        raise TokenRejected(forced, f"forced to {forced.value} by the active fault profile")
    if now >= token.expires_at:
        raise TokenRejected(ErrorCode.TOKEN_EXPIRED, f"token expired {_ago(now - token.expires_at)} ago "
                                                     f"(lifetime {int(token.expires_at - token.claims['iat'])} s)")
    if token.kind is Kind.DEGRADED:
        return ValidateResult({"valid": False, "degraded": True, "reason": token.claims.get("why", "quota_exhausted"),
                               "action": token.claims["act"]},
                              "degraded token (quota exhausted): the integrator decides", token)
    if req.keep_token or _binding_gates(req, app, token):  # else consume() below answers it alone
        _refuse_used(store.consumed(token.token_id, expires_at=token.expires_at), store, token)
    _check_binding(req, app, token)
    if not req.keep_token:
        record = {"at": now, "request_key": request_key, "caller_ip": caller_ip, "client_ip": req.client_ip}
        # None: this call consumed it; else a concurrent validate won, or the row is past the horizon
        _refuse_used(store.consume(token.token_id, scope=app.app_key, expires_at=token.expires_at, record=record),
                     store, token)
    reason = "valid (keep_token: not consumed)" if req.keep_token else "valid: consumed by this request"
    return ValidateResult(success_data(token, backup), reason, token)


def _refuse_used(earlier: Record | Expired | None, store: Store, token: Token) -> None:
    if isinstance(earlier, Expired):
        raise TokenRejected(ErrorCode.TOKEN_EXPIRED, horizon_reason(token.expires_at, earlier))
    if earlier is not None:
        raise TokenRejected(ErrorCode.TOKEN_CONSUMED, consumed_reason(earlier, consumer_number(store, earlier)))


def horizon_reason(expires_at: float, expired: Expired) -> str:
    """Why a token the caller's clock calls unexpired is refused: the store purged up to it."""
    at = time.strftime("%H:%M:%S", time.gmtime(expires_at))
    return (f"expired at {at} UTC, at or before the store's purge horizon: its single-use record may have been "
            "purged, so it is never accepted again (the clock was moved back, a clock-skew rule applies, or "
            "replicas' clocks disagree)")


def _load(raw: str, app: App, signer: TokenSigner, backup: bool) -> Token:
    if app.always_fail:
        raise TokenRejected(ErrorCode.INVALID_TOKEN, f"app {app.app_key} rejects every token (always-fail test app)")
    token = signer.load(raw, ALL_PASS_KINDS)
    if token.kind is Kind.OFFLINE and not backup:
        raise TokenRejected(ErrorCode.INVALID_TOKEN,
                            "offline_ tokens are only accepted by the backup endpoint /api/validate")
    if token.app_key != app.app_key:
        raise TokenRejected(ErrorCode.INVALID_TOKEN, f"token was minted for app {token.app_key}, not {app.app_key}")
    return token


def _binding_gates(req: ValidateRequest, app: App, token: Token) -> bool:
    """True when the binding check can refuse: then `consumed` must be checked before it
    (the order of docs/compatibility.md §11)."""
    return app.ip_binding == "strict" and bool(req.client_ip) and bool(token.claims.get("ip"))


def _check_binding(req: ValidateRequest, app: App, token: Token) -> None:
    if not _binding_gates(req, app, token):
        return
    solver_ip = token.claims.get("ip")
    if req.client_ip != solver_ip:
        raise TokenRejected(ErrorCode.BINDING_MISMATCH,
                            f"client_ip {req.client_ip} differs from the solver's IP {solver_ip} (strict IP binding)")


def success_data(token: Token, backup: bool = False) -> dict[str, Any]:
    c = token.claims
    data = {
        "valid": True,
        "challenge_id": challenge_id(token),
        "action": c["act"],
        "uid": c.get("uid"),
        "captcha_args": {
            "platform": c.get("plat", "web"),
            "user_ip": c.get("ip"),
            "referer": c.get("ref"),
            "pkg": c.get("pkg"),
            "solved_at": c.get("sat"),
            "risk_score": c.get("risk", 10),
        },
    }
    if backup and token.kind is Kind.OFFLINE:
        data["offline"] = True  # emulator choice: docs/compatibility.md §4 hint at this flag
    return data


def with_legacy_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The older API docs' fields at the top of a valid answer's data, beside captcha_args
    (what the vendor's demo verify.php reads): risk_score, client_ip (the solver's IP), offline."""
    args = data.get("captcha_args")
    if not data.get("valid") or not isinstance(args, dict):
        return data
    return {**data, "risk_score": args.get("risk_score"), "client_ip": args.get("user_ip"),
            "offline": bool(data.get("offline"))}


def consumed_reason(record: dict[str, Any], number: int | None = None) -> str:
    at = record.get("at")
    when = time.strftime("%H:%M:%S", time.gmtime(at)) if at else "an earlier time"
    who = f" by request #{number}" if number else ""
    where = f" from {record['caller_ip']}" if record.get("caller_ip") else ""
    return f"consumed at {when} UTC{who}{where}"


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min {seconds % 60} s"

"""Minting pass tokens without a browser (control plane, pytest plugin, `mint` command)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ErrorCode, RequestError
from .apps import App
from .server_tokens import MAX_ACTION_LENGTH
from .tokens import DEGRADED_TTL, KIND_BY_LABEL, MAX_UID, Kind, Token, TokenSigner
from .validation import normalize_ip

MAX_TTL = 10 * 365 * 86400  # ten years keeps every expiry a printable timestamp
PLATFORMS = ("web", "android", "ios", "flutter", "windows", "macos", "linux", "electron")


@dataclass(frozen=True)
class MintRequest:
    app_key: str = "demo_app"
    action: str = "default"
    kind: Kind = Kind.PASS
    ttl: int | None = None
    client_ip: str | None = None
    uid: str | None = None
    referer: str | None = None
    platform: str = "web"
    pkg: str | None = None
    risk_score: int | None = None

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> MintRequest:
        unknown = set(body) - {"app_key", "action", "kind", "ttl", "client_ip", "uid", "referer",
                               "platform", "pkg", "risk_score"}
        if unknown:
            raise RequestError(ErrorCode.INVALID_REQUEST, f"unknown field(s): {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for name in ("app_key", "action", "client_ip", "uid", "referer", "platform", "pkg"):
            value = body.get(name)
            if value is not None and not isinstance(value, str):
                raise RequestError(ErrorCode.INVALID_REQUEST, f"{name} must be a string")
            if value:
                values[name] = value
        for name in ("ttl", "risk_score"):
            value = body.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise RequestError(ErrorCode.INVALID_REQUEST, f"{name} must be an integer")
            if value is not None:
                values[name] = value
        kind = body.get("kind", "pass")
        if not isinstance(kind, str) or kind not in KIND_BY_LABEL or kind == "server":
            raise RequestError(ErrorCode.INVALID_REQUEST, "kind must be pass, degraded or offline")
        values["kind"] = KIND_BY_LABEL[kind]
        req = cls(**values)
        req.check()
        return req

    def check(self) -> None:
        if self.ttl is not None and not 1 <= self.ttl <= MAX_TTL:
            raise RequestError(ErrorCode.INVALID_REQUEST, f"ttl must be from 1 to {MAX_TTL} seconds")
        if self.risk_score is not None and not 0 <= self.risk_score <= 100:
            raise RequestError(ErrorCode.INVALID_REQUEST, "risk_score must be between 0 and 100")
        if self.uid and len(self.uid) > MAX_UID:
            raise RequestError(ErrorCode.INVALID_REQUEST, f"uid is longer than {MAX_UID} characters")
        if len(self.action) > MAX_ACTION_LENGTH or not self.action.strip():
            raise RequestError(ErrorCode.INVALID_ACTION, f"action must be 1 to {MAX_ACTION_LENGTH} characters")
        if self.platform not in PLATFORMS:
            raise RequestError(ErrorCode.INVALID_REQUEST, f"platform must be one of {', '.join(PLATFORMS)}")
        if self.client_ip:
            normalize_ip(self.client_ip, "client_ip")


def mint(req: MintRequest, app: App, *, signer: TokenSigner, now: float) -> Token:
    """A pass, degraded or offline token with the claims a solved widget would give it."""
    if req.kind is Kind.DEGRADED:
        return signer.mint_degraded(app_key=app.app_key, action=req.action, now=now,
                                    ttl=req.ttl or DEGRADED_TTL)
    return signer.mint_pass(
        app_key=app.app_key, action=req.action, now=now, ttl=req.ttl or app.pass_token_ttl, kind=req.kind,
        client_ip=normalize_ip(req.client_ip, "client_ip") if req.client_ip else None,
        referer=req.referer, platform=req.platform, pkg=req.pkg, uid=req.uid,
        risk_score=app.risk_score if req.risk_score is None else req.risk_score)

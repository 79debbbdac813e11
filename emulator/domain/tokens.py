"""TokenSigner: mint and load pt_/sct_/dg_/offline_ tokens, one itsdangerous salt per kind.

A token is `<prefix><itsdangerous payload>.<signature>`; the salt differs per kind, so an
sct_ re-prefixed as pt_ fails its signature. Claims use short keys to stay under 1024 chars."""

from __future__ import annotations

import secrets
import zlib
from dataclasses import dataclass
from enum import Enum
from typing import Any

from itsdangerous import BadData, BadPayload, BadSignature, Serializer, URLSafeSerializer
from itsdangerous.encoding import base64_decode

from ..errors import ErrorCode, TokenRejected

MAX_TOKEN_LENGTH = 1024
MAX_PAYLOAD_BYTES = 16 * 1024  # a real token's claims inflate to well under 1 KiB
MAX_REFERER = 256
MAX_UID = 128
DEGRADED_TTL = 300  # dg_ tokens live 5 minutes (docs/compatibility.md §6)


class Kind(str, Enum):
    PASS = "pt_"
    SERVER = "sct_"
    DEGRADED = "dg_"
    OFFLINE = "offline_"

    @property
    def label(self) -> str:
        return _LABELS[self.value]


_LABELS = {"pt_": "pass", "sct_": "server", "dg_": "degraded", "offline_": "offline"}


KIND_BY_LABEL = {k.label: k for k in Kind}
# longest prefix first so "offline_" is not mistaken for anything shorter
_PREFIXES = sorted(Kind, key=lambda k: -len(k.value))


class BoundedSerializer(URLSafeSerializer):
    """itsdangerous's URL-safe serializer that never inflates a payload past MAX_PAYLOAD_BYTES
    and refuses JSON nested too deeply: a forged 1 KiB token cannot cost megabytes or a traceback."""

    def load_payload(self, payload: bytes, *args: Any, serializer: Any | None = None, **kwargs: Any) -> Any:
        compressed = payload.startswith(b".")
        try:
            data = base64_decode(payload[1:] if compressed else payload)
            if compressed:
                data = _inflate(data)
            return Serializer.load_payload(self, data, serializer=serializer)
        except BadPayload:
            raise
        except (Exception, RecursionError) as exc:  # itsdangerous's contract: a decoding failure is BadPayload
            raise BadPayload("payload could not be decoded", original_error=exc) from None


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, MAX_PAYLOAD_BYTES)
    if inflater.unconsumed_tail or not inflater.eof:
        raise BadPayload(f"payload inflates past {MAX_PAYLOAD_BYTES} bytes or is cut short")
    return out


def kind_of(token: str) -> Kind | None:
    for kind in _PREFIXES:
        if token.startswith(kind.value):
            return kind
    return None


def new_id() -> str:
    return secrets.token_hex(8)


@dataclass(frozen=True)
class Token:
    """A verified token: its kind and claims (see the mint_* functions for the keys)."""

    kind: Kind
    claims: dict[str, Any]

    @property
    def token_id(self) -> str:
        return self.claims["jti"]

    @property
    def app_key(self) -> str:
        return self.claims["app"]

    @property
    def expires_at(self) -> float:
        return float(self.claims["exp"])


class TokenSigner:
    def __init__(self, secret: str):
        self._serializers = {
            kind: BoundedSerializer(secret, salt=f"captchala-emulator/{kind.label}") for kind in Kind
        }

    def dumps(self, kind: Kind, claims: dict[str, Any]) -> str:
        token = kind.value + self._serializers[kind].dumps(claims)
        if len(token) > MAX_TOKEN_LENGTH:  # guarded by the field limits; never expected
            raise ValueError(f"token would be {len(token)} characters")
        return token

    def load(self, token: str, accept: tuple[Kind, ...]) -> Token:
        """Verify a token of one of the accepted kinds, or raise TokenRejected(invalid_token)."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenRejected(ErrorCode.INVALID_TOKEN, f"longer than {MAX_TOKEN_LENGTH} characters: no token is")
        kind = kind_of(token)
        if kind is None:
            raise TokenRejected(ErrorCode.INVALID_TOKEN, "not an emulator token (unknown prefix)")
        if kind not in accept:
            wanted = ", ".join(k.value for k in accept)
            raise TokenRejected(ErrorCode.INVALID_TOKEN,
                                f"wrong kind: a {kind.label} token ({kind.value}) where {wanted} is expected")
        try:
            claims = self._serializers[kind].loads(token[len(kind.value):])
        except BadPayload:
            raise TokenRejected(ErrorCode.INVALID_TOKEN, "signed payload cannot be decoded") from None
        except BadSignature:
            raise TokenRejected(ErrorCode.INVALID_TOKEN,
                                "bad signature: forged, tampered or signed with another secret") from None
        if not isinstance(claims, dict) or "jti" not in claims or "app" not in claims or "exp" not in claims:
            raise TokenRejected(ErrorCode.INVALID_TOKEN, "signed payload is not a token")
        return Token(kind, claims)

    def peek(self, token: str) -> tuple[Kind | None, dict[str, Any] | None, bool]:
        """Unverified look inside a token: (kind, claims or None, signature ok)."""
        kind = kind_of(token)
        if kind is None or len(token) > MAX_TOKEN_LENGTH:
            return kind, None, False
        try:
            ok, payload = self._serializers[kind].loads_unsafe(token[len(kind.value):])
        except BadData:  # signed, but its payload does not decode
            return kind, None, True
        return kind, payload if isinstance(payload, dict) else None, ok

    # --- minting --------------------------------------------------------------------

    def mint_pass(self, *, app_key: str, action: str, now: float, ttl: float, kind: Kind = Kind.PASS,
                  client_ip: str | None = None, referer: str | None = None, platform: str = "web",
                  pkg: str | None = None, uid: str | None = None, risk_score: int = 10,
                  challenge: str | None = None) -> Token:
        """A pass token (pt_, or offline_ for the backup endpoint) as the widget would get it.

        `challenge` is the id of the browser challenge it solved (without `ch_`); by default
        the token's own id doubles as its challenge id."""
        jti = new_id()
        claims = {
            "app": app_key, "act": action, "jti": jti, "ch": challenge, "uid": uid, "ip": client_ip,
            "ref": (referer or None) and referer[:MAX_REFERER], "plat": platform, "pkg": pkg,
            "sat": int(now), "risk": risk_score, "iat": round(now, 3), "exp": round(now + ttl, 3),
        }
        return Token(kind, _drop_none(claims))

    def mint_degraded(self, *, app_key: str, action: str, now: float,
                      reason: str = "quota_exhausted", ttl: float = DEGRADED_TTL) -> Token:
        claims = {"app": app_key, "act": action, "jti": new_id(), "why": reason,
                  "iat": round(now, 3), "exp": round(now + ttl, 3)}
        return Token(Kind.DEGRADED, claims)

    def mint_server(self, *, app_key: str, action: str, now: float, ttl: float, max_uses: int,
                    binding_ip: str | None = None, bind_uid: str | None = None) -> Token:
        claims = {"app": app_key, "act": action, "jti": new_id(), "bip": binding_ip, "uid": bind_uid,
                  "max": max_uses, "iat": round(now, 3), "exp": round(now + ttl, 3)}
        return Token(Kind.SERVER, _drop_none(claims))

    def encode(self, token: Token) -> str:
        return self.dumps(token.kind, token.claims)


def challenge_id(token: Token) -> str:
    return "ch_" + token.claims.get("ch", token.token_id)


def _drop_none(claims: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in claims.items() if v is not None}


# Human names of the claim keys, for explain and the docs.
CLAIM_NAMES = {
    "app": "app_key", "act": "action", "jti": "token_id", "uid": "uid", "ip": "user_ip",
    "ref": "referer", "plat": "platform", "pkg": "pkg", "sat": "solved_at", "risk": "risk_score",
    "iat": "issued_at", "exp": "expires_at", "bip": "binding_ip", "max": "max_uses",
    "why": "reason", "ch": "challenge_id",
}


def readable_claims(claims: dict[str, Any]) -> dict[str, Any]:
    return {CLAIM_NAMES.get(k, k): v for k, v in claims.items()}

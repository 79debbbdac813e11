"""TokenSigner: mint and load pt_/sct_/dg_/offline_ tokens, one itsdangerous salt per kind.

A token is `<prefix><itsdangerous payload>.<signature>`; the salt differs per kind, so an
sct_ re-prefixed as pt_ fails its signature. Claims use short keys to stay under 1024 chars.

Minting goes through itsdangerous (its bytes are the wire format); verifying does not: a
SignedCodec derives its key and keys HMAC-SHA1 with it once (HmacSha1), and accepts the signature only
as the exact base64url text it would write itself, so exactly one token string is valid per payload."""

from __future__ import annotations

import binascii
import hashlib
import hmac
import math
import zlib
from dataclasses import dataclass
from enum import Enum
from typing import Any

from itsdangerous import BadPayload, BadSignature, URLSafeSerializer

from ..errors import ErrorCode, TokenRejected
from . import json_codec
from .ids import per_process

MAX_TOKEN_LENGTH = 1024
MAX_PAYLOAD_BYTES = 16 * 1024  # a real token's claims inflate to well under 1 KiB
MAX_REFERER = 256
MAX_UID = 128
DEGRADED_TTL = 300  # dg_ tokens live 5 minutes (docs/compatibility.md §6)
# itsdangerous's defaults, pinned: they are the wire format, and SignedCodec's MAC must match them
_WIRE_SIGNER = {"digest_method": hashlib.sha1, "key_derivation": "django-concat"}
_SHA1_BLOCK = 64
_IPAD = bytes(b ^ 0x36 for b in range(256))  # HMAC's pads as translation tables, as hmac.py keeps them
_OPAD = bytes(b ^ 0x5C for b in range(256))
COMPRESS_ABOVE = 512  # payload characters: a typical token's is about 250
_URLSAFE_TO_STD = bytes.maketrans(b"-_", b"+/")
_STD_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_CLAIMS_JSON = json_codec.compact_encoder()  # json.dumps(claims, separators=(",", ":")): itsdangerous's text


class Kind(str, Enum):
    PASS = "pt_"
    SERVER = "sct_"
    DEGRADED = "dg_"
    OFFLINE = "offline_"

    @property
    def label(self) -> str:
        return _LABELS[self]  # a str enum hashes as its value (`.value` is a slow descriptor)


_LABELS = {"pt_": "pass", "sct_": "server", "dg_": "degraded", "offline_": "offline"}


KIND_BY_LABEL = {k.label: k for k in Kind}
# longest prefix first so "offline_" is not mistaken for anything shorter
_PREFIXES = tuple((k.value, k) for k in sorted(Kind, key=lambda k: -len(k.value)))


class SignedCodec:
    """One salt's `<payload>.<signature>` codec: itsdangerous's URL-safe format, verified canonically.

    The signature must be byte for byte the unpadded base64url of HMAC-SHA1(key, payload): a lax
    base64 decoder would also take its padding-bit twins, `=`, whitespace or non-ASCII noise."""

    def __init__(self, secret: str, salt: str):
        self._serializer = URLSafeSerializer(secret, salt=salt, signer_kwargs=_WIRE_SIGNER)
        self._mac = HmacSha1(self._serializer.make_signer().derive_key())

    def dumps(self, claims: dict[str, Any]) -> str:
        """itsdangerous's format, compressed only when the payload is long: zlib sets up its state
        per call, which cost more than the whole rest of a mint to save a few dozen characters on
        a typical token. Either form loads (decode_payload)."""
        data = _CLAIMS_JSON(claims).encode("utf-8")
        payload = _base64_encode(data)
        if len(payload) > COMPRESS_ABOVE:
            compressed = zlib.compress(data)
            if len(compressed) < len(data) - 1:  # itsdangerous's rule
                payload = b"." + _base64_encode(compressed)
        return (payload + b"." + _base64_encode(self._mac(payload))).decode("ascii")

    def loads(self, body: str) -> Any:
        """The verified payload; BadSignature unless signed exactly so, BadPayload if it does not decode."""
        payload, signed = self._unsign(body)
        if payload is None or not signed:
            raise BadSignature("signature does not match")
        return decode_payload(payload)

    def loads_unsafe(self, body: str) -> tuple[bool, Any]:
        """(signature ok, payload or None) like itsdangerous's loads_unsafe: a signed payload that
        does not decode raises BadPayload; an unsigned one is just None."""
        payload, signed = self._unsign(body)
        if payload is None:
            return False, None
        if signed:
            return True, decode_payload(payload)
        try:
            return False, decode_payload(payload)
        except BadPayload:
            return False, None

    def _unsign(self, body: str) -> tuple[bytes | None, bool]:
        """(payload, signature ok); payload None when there is no separator."""
        payload, sep, signature = body.encode("utf-8", "surrogatepass").rpartition(b".")
        if not sep:
            return None, False
        return payload, hmac.compare_digest(signature, _base64_encode(self._mac(payload)))


class HmacSha1:
    """HMAC-SHA1 (RFC 2104) with the keyed inner and outer hash states made once: a MAC is then two
    copies and two updates, about 12 000 instructions, where hmac.digest keys both every time
    (about 22 000)."""

    def __init__(self, key: bytes) -> None:
        if len(key) > _SHA1_BLOCK:
            key = hashlib.sha1(key).digest()
        key = key.ljust(_SHA1_BLOCK, b"\0")
        self._inner, self._outer = hashlib.sha1(key.translate(_IPAD)), hashlib.sha1(key.translate(_OPAD))

    def __call__(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


def decode_payload(payload: bytes) -> Any:
    """itsdangerous's URL-safe payload (`.` = zlib), never inflated past MAX_PAYLOAD_BYTES and with
    JSON nested too deeply refused: a forged 1 KiB token cannot cost megabytes or a traceback."""
    compressed = payload.startswith(b".")
    try:
        data = _base64_decode(payload[1:] if compressed else payload)
        if compressed:
            data = _inflate(data)
        return json_codec.loads(data.decode("utf-8"))
    except BadPayload:
        raise
    except (Exception, RecursionError) as exc:  # itsdangerous's contract: a decoding failure is BadPayload
        raise BadPayload("payload could not be decoded", original_error=exc) from None


def _base64_encode(data: bytes) -> bytes:
    """Unpadded base64url, as itsdangerous writes it."""
    return binascii.b2a_base64(data, newline=False).translate(_STD_TO_URLSAFE).rstrip(b"=")


def _base64_decode(text: bytes) -> bytes:
    """itsdangerous's lax base64url decoding: non-ASCII and non-alphabet bytes are skipped."""
    if not text.isascii():
        text = bytes(b for b in text if b < 128)
    return binascii.a2b_base64(text.translate(_URLSAFE_TO_STD) + b"=" * (-len(text) % 4))


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, MAX_PAYLOAD_BYTES)
    if inflater.unconsumed_tail or not inflater.eof:
        raise BadPayload(f"payload inflates past {MAX_PAYLOAD_BYTES} bytes or is cut short")
    return out


_EXACT_BELOW = 2.0**33  # |x| * 1000 < 2**43: the product's rounding error stays under 0.001


def round_ms(x: float) -> float:
    """Exactly round(x, 3), without its decimal conversion (about 7 000 instructions for a timestamp).

    Rounding the scaled float to the nearest integer gives round's answer except within the
    product's rounding error of a tie (where round also rounds half to even): those, and huge or
    non-finite values, go to round itself."""
    scaled = x * 1000.0
    if abs(x) < _EXACT_BELOW and abs(scaled - math.floor(scaled) - 0.5) > 0.01:
        return math.copysign(math.floor(scaled + 0.5) / 1000.0, x)
    return round(x, 3)


def kind_of(token: str) -> Kind | None:
    for prefix, kind in _PREFIXES:
        if token.startswith(prefix):
            return kind
    return None


# Token and challenge ids: a per-process count, in order (domain/ids.py says why).
_TOKEN_IDS = per_process()


def new_id() -> str:
    return _TOKEN_IDS()


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
        self._codecs = {kind: SignedCodec(secret, salt=f"captchala-emulator/{kind.label}") for kind in Kind}

    def dumps(self, kind: Kind, claims: dict[str, Any]) -> str:
        token = kind + self._codecs[kind].dumps(claims)  # a str enum adds as its value
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
            claims = self._codecs[kind].loads(token[len(kind):])
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
            ok, payload = self._codecs[kind].loads_unsafe(token[len(kind):])
        except BadPayload:  # signed, but its payload does not decode
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
            "sat": int(now), "risk": risk_score, "iat": round_ms(now), "exp": round_ms(now + ttl),
        }
        return Token(kind, _drop_none(claims))

    def mint_degraded(self, *, app_key: str, action: str, now: float,
                      reason: str = "quota_exhausted", ttl: float = DEGRADED_TTL) -> Token:
        claims = {"app": app_key, "act": action, "jti": new_id(), "why": reason,
                  "iat": round_ms(now), "exp": round_ms(now + ttl)}
        return Token(Kind.DEGRADED, claims)

    def mint_server(self, *, app_key: str, action: str, now: float, ttl: float, max_uses: int,
                    binding_ip: str | None = None, bind_uid: str | None = None) -> Token:
        claims = {"app": app_key, "act": action, "jti": new_id(), "bip": binding_ip, "uid": bind_uid,
                  "max": max_uses, "iat": round_ms(now), "exp": round_ms(now + ttl)}
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

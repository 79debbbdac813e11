"""A forgery battery: bit flips, truncations, re-signing with another secret, cross-kind,
cross-app, expired-but-re-signed and payload edits — zero acceptances.

Every forgery is derived from a genuine token, and must be answered `invalid_token` (or
`empty_token` when nothing is left): never valid, never degraded, and never an answer such
as token_expired that would show its signature had passed. The genuine tokens still validate
afterwards, so the battery attacked live tokens, not dead ones."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator

import pytest
from itsdangerous.encoding import base64_decode, base64_encode

from emulator.domain.tokens import Kind, Token, TokenSigner

DEMO = {"X-App-Key": "demo_app", "X-App-Secret": "demo_secret"}
OTHER_APP = {"X-App-Key": "auto_pass_app", "X-App-Secret": "auto_pass_secret"}
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
REJECTED = {"invalid_token", "empty_token"}
Case = tuple[str, str, str, dict]  # label, path, token, headers


def split(token: str) -> tuple[str, bool, str, str]:
    """(prefix, compressed, payload, signature) of a `<prefix><payload>.<sig>` token."""
    kind = next(k for k in sorted(Kind, key=lambda k: -len(k.value)) if token.startswith(k.value))
    body = token[len(kind.value):]
    compressed = body.startswith(".")
    payload, sig = body.lstrip(".").rsplit(".", 1)
    return kind.value, compressed, payload, sig


def claims_of(token: str) -> dict:
    _, compressed, payload, _ = split(token)
    raw = base64_decode(payload)
    return json.loads(zlib.decompress(raw) if compressed else raw)


def with_claims(token: str, claims: dict) -> str:
    """Same prefix and signature, edited payload (what a tamperer can do without the secret)."""
    prefix, _, _, sig = split(token)
    raw = json.dumps(claims, separators=(",", ":")).encode()
    return f"{prefix}{base64_encode(raw).decode()}.{sig}"


def flip(ch: str) -> str:
    """Flip the top bit of a base64url character's 6-bit value: the decoded bytes always change."""
    return B64[B64.index(ch) ^ 0b100000] if ch in B64 else "A"


def bit_flips(label: str, token: str, path: str, headers: dict) -> Iterator[Case]:
    for i, ch in enumerate(token):
        yield f"{label} flip@{i}", path, token[:i] + flip(ch) + token[i + 1:], headers


def truncations(label: str, token: str, path: str, headers: dict) -> Iterator[Case]:
    for n in range(len(token)):
        yield f"{label} first {n} chars", path, token[:n], headers
    prefix = split(token)[0]
    for n in range(1, len(token) - len(prefix)):
        yield f"{label} minus {n} leading payload chars", path, prefix + token[len(prefix) + n:], headers


def battery(genuine: dict[str, str], foreign: TokenSigner, real: TokenSigner, now: float) -> Iterator[Case]:
    pt, dg, off, sct, old = genuine["pt"], genuine["dg"], genuine["offline"], genuine["sct"], genuine["expired"]
    yield from bit_flips("pt", pt, "/v1/validate", DEMO)
    yield from bit_flips("offline at backup", off, "/api/validate", DEMO)
    yield from bit_flips("dg", dg, "/v1/validate", DEMO)
    yield from truncations("pt", pt, "/v1/validate", DEMO)
    claims = claims_of(pt)
    # re-signed with another secret, and freshly minted by a signer with another secret
    yield "pt re-signed, other secret", "/v1/validate", foreign.encode(Token(Kind.PASS, claims)), DEMO
    yield "offline re-signed, other secret", "/api/validate", foreign.encode(Token(Kind.OFFLINE, claims_of(off))), DEMO
    minted = foreign.mint_pass(app_key="demo_app", action="login", now=now, ttl=300)
    yield "pt minted with other secret", "/v1/validate", foreign.encode(minted), DEMO
    # cross-kind: the right secret, the wrong salt
    yield "sct_ as pass_token", "/v1/validate", sct, DEMO
    yield "sct_ re-prefixed pt_", "/v1/validate", "pt_" + sct[len("sct_"):], DEMO
    yield "dg_ re-prefixed pt_", "/v1/validate", "pt_" + dg[len("dg_"):], DEMO
    yield "pt_ re-prefixed dg_", "/v1/validate", "dg_" + pt[len("pt_"):], DEMO
    yield "offline_ at the main endpoint", "/v1/validate", off, DEMO
    yield "offline_ re-prefixed pt_", "/v1/validate", "pt_" + off[len("offline_"):], DEMO
    yield "pt_ re-prefixed offline_ at backup", "/api/validate", "offline_" + pt[len("pt_"):], DEMO
    yield "pass claims signed with the sct salt", "/v1/validate", "pt_" + real.dumps(Kind.SERVER, claims)[4:], DEMO
    # cross-app: a genuine demo_app token at another app, and one whose app claim was edited
    yield "pt at another app", "/v1/validate", pt, OTHER_APP
    yield "pt with app edited", "/v1/validate", with_claims(pt, {**claims, "app": "auto_pass_app"}), OTHER_APP
    # expired, then "revived": a later exp re-signed with another secret, or edited in place
    revived = {**claims_of(old), "exp": now + 3600}
    yield "expired re-signed, other secret", "/v1/validate", foreign.encode(Token(Kind.PASS, revived)), DEMO
    yield "expired with exp edited", "/v1/validate", with_claims(old, revived), DEMO
    # payload edits under the original signature
    for key, value in (("exp", claims["exp"] + 86400), ("jti", "0" * 16), ("act", "admin"), ("risk", 0),
                       ("ip", "10.0.0.1"), ("uid", "root")):
        yield f"pt with {key} edited", "/v1/validate", with_claims(pt, {**claims, key: value}), DEMO
    yield "pt with the payload of another pt", "/v1/validate", with_claims(pt, claims_of(genuine["pt2"])), DEMO


@pytest.fixture
def genuine(client, mint, fake_time) -> dict[str, str]:
    expired = mint(ttl=1)
    fake_time.advance(5)
    issued = client.post("/v1/server/challenge/issue", json={"action": "login"}, headers=DEMO).json
    return {"pt": mint(), "pt2": mint(), "dg": mint(kind="degraded"), "offline": mint(kind="offline"),
            "sct": issued["data"]["server_token"], "expired": expired}


def test_forgery_battery_has_zero_acceptances(client, runtime, fake_time, genuine):
    foreign = TokenSigner("not-the-emulator-secret")
    cases = list(battery(genuine, foreign, runtime.signer, fake_time()))
    assert len(cases) > 700
    accepted = []
    for label, path, token, headers in cases:
        answer = client.post(path, json={"pass_token": token}, headers=headers).json
        data = answer["data"]
        rejected = data.get("valid") is False and not data.get("degraded") and data.get("error") in REJECTED
        if answer["code"] != 0 or not rejected:
            accepted.append(f"{label}: {answer}")
    assert not accepted, (f"{len(accepted)} of {len(cases)} forgeries were not rejected as invalid:\n"
                          + "\n".join(accepted[:20]))
    for kind, path in (("pt", "/v1/validate"), ("pt2", "/v1/validate"), ("offline", "/api/validate")):
        answer = client.post(path, json={"pass_token": genuine[kind]}, headers=DEMO).json
        assert answer["data"]["valid"] is True, f"the genuine {kind} token no longer validates: {answer}"

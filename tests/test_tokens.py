"""TokenSigner: one salt per kind, tamper detection, the 1024-character bound."""

import pytest

from emulator.domain.tokens import MAX_REFERER, MAX_UID, Kind, TokenSigner, kind_of
from emulator.errors import ErrorCode, TokenRejected

NOW = 1_800_000_000.0


@pytest.fixture
def signer():
    return TokenSigner("secret-a")


def test_pass_token_roundtrip_keeps_claims(signer):
    token = signer.mint_pass(app_key="demo_app", action="login", now=NOW, ttl=300, client_ip="1.2.3.4",
                             referer="https://shop.example/checkout", uid="u-1")
    raw = signer.encode(token)
    assert raw.startswith("pt_")
    loaded = signer.load(raw, (Kind.PASS,))
    assert loaded.claims == token.claims
    assert loaded.expires_at == NOW + 300


@pytest.mark.parametrize("kind", list(Kind))
def test_prefix_names_the_kind(signer, kind):
    claims = {"app": "a", "jti": "j", "exp": NOW}
    assert kind_of(signer.dumps(kind, claims)) is kind


def test_one_kind_cannot_pass_as_another(signer):
    server = signer.encode(signer.mint_server(app_key="demo_app", action="login", now=NOW, ttl=300, max_uses=1))
    relabelled = "pt_" + server[len("sct_"):]
    with pytest.raises(TokenRejected) as exc:
        signer.load(relabelled, (Kind.PASS,))
    assert exc.value.code is ErrorCode.INVALID_TOKEN
    assert "signature" in exc.value.reason
    with pytest.raises(TokenRejected, match="wrong kind"):
        signer.load(server, (Kind.PASS,))


def test_other_secret_is_rejected(signer):
    other = TokenSigner("secret-b")
    raw = other.encode(other.mint_pass(app_key="demo_app", action="x", now=NOW, ttl=1))
    with pytest.raises(TokenRejected, match="signature"):
        signer.load(raw, (Kind.PASS,))


@pytest.mark.parametrize("position", [5, 20, -3])
def test_any_tampered_character_is_rejected(signer, position):
    raw = signer.encode(signer.mint_pass(app_key="demo_app", action="login", now=NOW, ttl=300))
    chars = list(raw)
    chars[position] = "A" if chars[position] != "A" else "B"
    with pytest.raises(TokenRejected):
        signer.load("".join(chars), (Kind.PASS,))


def test_largest_possible_pass_token_stays_under_1024_chars(signer):
    token = signer.mint_pass(
        app_key="k" * 64, action="a" * 64, now=NOW, ttl=10**9, client_ip="ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        referer="https://example.com/" + "é" * 400, platform="android", pkg="p" * 128, uid="u" * MAX_UID,
        challenge="c" * 16)
    assert len(token.claims["ref"]) == MAX_REFERER
    assert len(signer.encode(token)) < 1024


def test_peek_reports_forged_payload(signer):
    raw = TokenSigner("other").encode(TokenSigner("other").mint_pass(app_key="demo_app", action="x", now=NOW, ttl=1))
    kind, claims, ok = signer.peek(raw)
    assert kind is Kind.PASS and claims["app"] == "demo_app" and ok is False

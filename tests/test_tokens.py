"""TokenSigner: one salt per kind, tamper detection, the 1024-character bound."""

import base64
import tracemalloc
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import URLSafeSerializer

from emulator.domain.tokens import MAX_REFERER, MAX_TOKEN_LENGTH, MAX_UID, Kind, TokenSigner, kind_of
from emulator.errors import ErrorCode, TokenRejected
from tests.support.fuzz import fuzz

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


# --- the wire format is unchanged, and exactly one spelling of a signature is valid ------------

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
GOLDEN_SECRET = "golden-secret"
GOLDEN_CLAIMS = {"app": "demo_app", "act": "login", "jti": "0123456789abcdef", "ip": "1.2.3.4",
                 "ref": "https://shop.example/checkout", "plat": "web", "sat": 1800000000, "risk": 10,
                 "iat": 1800000000.0, "exp": 1800000300.0}
_GOLDEN_BODY = (".eJxVjFEOwiAQRO_Ct4FSqtZexlC6CpbKpmBsYry7Q2JM3K95b3fnJSyzGMRESzrXuBPWFYiYruEOupUAanRruv3h2J_s6Ca6YBH"
                "qm5atNLIDrpCD8KVwHpTKPrGkzS4cSTlPbk6PgiuOtpY_aQTkmnXffAcdIc8wSOF_JaFo458yVb0_QPA0bQ.")
# minted by earlier versions (always compressed): these must keep loading
GOLDEN = {
    Kind.PASS: "pt_" + _GOLDEN_BODY + "rD6eOpWeIeW0y3KiECf8emWgFvM",
    Kind.SERVER: "sct_" + _GOLDEN_BODY + "J9voUnBbXltPbWwiXSt0Dv9nuzI",
    Kind.DEGRADED: "dg_" + _GOLDEN_BODY + "ciIu_-t_IsATggi8x8rgtr9Ubkg",
    Kind.OFFLINE: "offline_" + _GOLDEN_BODY + "RvbB69gLXxLC9egikZjRQNTwhyM",
}
GOLDEN_SMALL = "pt_eyJhcHAiOiJhIiwianRpIjoiaiIsImV4cCI6MX0.Txf9AlBb6JxGBnLPKNsA6Jd5btg"  # short: not compressed


def padding_twins(token: str) -> list[str]:
    """The other spellings of a token's last signature character: a SHA-1 MAC is 160 bits in 27
    base64 characters, so the last one carries 4 bits of MAC and 2 padding bits a lax decoder ignores."""
    last = B64URL.index(token[-1])
    return [token[:-1] + B64URL[(last & ~0b11) | bits] for bits in range(4) if (last & ~0b11) | bits != last]


_MINTED_BODY = ("eyJhcHAiOiJkZW1vX2FwcCIsImFjdCI6ImxvZ2luIiwianRpIjoiMDEyMzQ1Njc4OWFiY2RlZiIsImlwIjoiMS4yLjMuNCIs"
                "InJlZiI6Imh0dHBzOi8vc2hvcC5leGFtcGxlL2NoZWNrb3V0IiwicGxhdCI6IndlYiIsInNhdCI6MTgwMDAwMDAwMCwicmlzayI6"
                "MTAsImlhdCI6MTgwMDAwMDAwMC4wLCJleHAiOjE4MDAwMDAzMDAuMH0.")
# what minting writes now: itsdangerous's format, uncompressed below COMPRESS_ABOVE payload characters
MINTED = {
    Kind.PASS: "pt_" + _MINTED_BODY + "Ch-S54KDxRAUT-d9r6GcT0SugqI",
    Kind.SERVER: "sct_" + _MINTED_BODY + "ZVvjlJrlXWCP2T7kfl1P8aLsJYI",
    Kind.DEGRADED: "dg_" + _MINTED_BODY + "rNdZ1MojjRt2gojEWKBbi481o80",
    Kind.OFFLINE: "offline_" + _MINTED_BODY + "oe0O4KSkHELih9V25jPIX2NV_OI",
}


@pytest.mark.parametrize("kind", list(Kind))
def test_minting_is_byte_for_byte_the_wire_format(kind):
    assert TokenSigner(GOLDEN_SECRET).dumps(kind, GOLDEN_CLAIMS) == MINTED[kind]


@pytest.mark.parametrize("kind", list(Kind))
def test_plain_itsdangerous_verifies_what_we_mint(kind):
    body = MINTED[kind][len(kind.value):]
    assert URLSafeSerializer(GOLDEN_SECRET, salt=f"captchala-emulator/{kind.label}").loads(body) == GOLDEN_CLAIMS


def test_a_long_payload_is_compressed_and_still_fits_and_loads():
    signer = TokenSigner(GOLDEN_SECRET)
    claims = {**GOLDEN_CLAIMS, "ref": "https://shop.example/" + "é" * 230, "uid": "u" * 128}
    raw = signer.dumps(Kind.PASS, claims)
    assert raw.startswith("pt_.") and len(raw) <= MAX_TOKEN_LENGTH  # "." marks a zlib payload
    assert signer.load(raw, (Kind.PASS,)).claims == claims


@pytest.mark.parametrize("raw", [*GOLDEN.values(), GOLDEN_SMALL])
def test_golden_tokens_load_and_peek(raw):
    signer = TokenSigner(GOLDEN_SECRET)
    kind = kind_of(raw)
    assert kind is not None
    loaded = signer.load(raw, (kind,))
    assert loaded.kind is kind and loaded.claims["app"] in ("demo_app", "a")
    assert signer.peek(raw) == (kind, loaded.claims, True)


def test_a_token_signed_by_plain_itsdangerous_defaults_loads(signer):
    body = URLSafeSerializer("secret-a", salt="captchala-emulator/pass").dumps(GOLDEN_CLAIMS)
    assert signer.load("pt_" + body, (Kind.PASS,)).claims == GOLDEN_CLAIMS


@pytest.mark.parametrize("kind", list(Kind))
def test_a_signature_differing_only_in_padding_bits_is_refused(kind):
    signer = TokenSigner(GOLDEN_SECRET)
    twins = padding_twins(GOLDEN[kind])
    assert len(twins) == 3
    for twin in twins:
        with pytest.raises(TokenRejected) as exc:
            signer.load(twin, (kind,))
        assert exc.value.code is ErrorCode.INVALID_TOKEN and "bad signature" in exc.value.reason
        assert signer.peek(twin) == (kind, GOLDEN_CLAIMS, False)


@pytest.mark.parametrize("respell", [
    lambda raw: raw + "=",                                                   # base64 padding
    lambda raw: raw + "==",
    lambda raw: raw + "é",                                                   # dropped as non-ASCII
    lambda raw: raw + "\n",                                                  # dropped as whitespace
    lambda raw: raw[:-5] + " " + raw[-5:-1] + "=" + raw[-1],                 # junk inside
    lambda raw: raw[:raw.rindex(".")] + raw[raw.rindex("."):].replace("-", "+").replace("_", "/"),  # std alphabet
])
def test_no_other_spelling_of_a_valid_signature_is_accepted(respell):
    signer, raw = TokenSigner(GOLDEN_SECRET), GOLDEN[Kind.DEGRADED]  # its signature has both - and _
    assert respell(raw) != raw
    with pytest.raises(TokenRejected, match="bad signature"):
        signer.load(respell(raw), (Kind.DEGRADED,))
    assert signer.peek(respell(raw))[2] is False


@pytest.mark.parametrize("raw", ["pt_abc\ud800.c2ln", "pt_" + _GOLDEN_BODY + "\udcff", "pt_\ud800"])
def test_a_lone_surrogate_is_a_bad_signature_not_a_crash(signer, raw):
    with pytest.raises(TokenRejected) as exc:
        signer.load(raw, (Kind.PASS,))
    assert exc.value.code is ErrorCode.INVALID_TOKEN
    kind, _, ok = signer.peek(raw)
    assert kind is Kind.PASS and ok is False


def test_a_signed_compressed_bomb_is_not_inflated_past_the_bound(signer):
    """Even a correctly signed payload inflates to at most MAX_PAYLOAD_BYTES, in load and in peek."""
    packed = base64.urlsafe_b64encode(zlib.compress(b'{"pad":"' + b"a" * 500_000 + b'"}', 9)).rstrip(b"=")
    raw = "pt_" + URLSafeSerializer("secret-a", salt="captchala-emulator/pass").make_signer().sign(
        b"." + packed).decode()
    assert len(raw) <= MAX_TOKEN_LENGTH
    tracemalloc.start()
    try:
        with pytest.raises(TokenRejected, match="cannot be decoded"):
            signer.load(raw, (Kind.PASS,))
        assert signer.peek(raw) == (Kind.PASS, None, True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 200_000, f"decoding took {peak} bytes"


def test_a_padding_twin_over_http_is_invalid_and_leaves_the_token_unconsumed(mint, validate):
    raw = mint()
    for twin in padding_twins(raw):
        assert validate(twin)["data"] == {"valid": False, "error": "invalid_token"}
    assert validate(raw)["data"]["valid"] is True


def test_a_lone_surrogate_over_http_is_invalid_request_not_a_500(client):
    """Not text at all, so refused with the body (tests/test_hostile_text.py), before any token check."""
    body = '{"pass_token": "pt_abc\\ud800.c2ln"}'
    response = client.post("/v1/validate", data=body, content_type="application/json",
                           headers={"X-App-Key": "demo_app", "X-App-Secret": "demo_secret"})
    assert response.status_code == 200 and response.json["data"] == {"valid": False, "error": "invalid_request"}
    assert response.headers["X-Captchala-Emulator-Reason"].startswith("body: pass_token holds a lone UTF-16 surrogate")


@fuzz(300)
@given(key=st.binary(max_size=200), message=st.binary(max_size=1500))
def test_the_precomputed_hmac_is_hmac_sha1(key, message):
    """SignedCodec keys HMAC-SHA1's inner and outer states once (issue 11: about 12 000 instructions
    a MAC instead of 22 000); every key length, including longer than SHA-1's 64-byte block."""
    import hmac

    from emulator.domain.tokens import HmacSha1

    assert HmacSha1(key)(message) == hmac.digest(key, message, "sha1")

"""The browser challenge as pure domain rules (no HTTP): init, solve, the bypass worker."""

from __future__ import annotations

import pytest

from emulator.domain.apps import BUILTIN_APPS, App, AppRegistry, Widget
from emulator.domain.challenges import (
    CHALLENGE_TTL,
    Challenge,
    ChallengeCodec,
    InitRequest,
    OfflineRequest,
    SolveRequest,
    find_app,
    init_challenge,
    issue_offline_token,
    solve_challenge,
)
from emulator.domain.tokens import Kind, TokenSigner
from emulator.domain.validation import ValidateRequest, validate
from emulator.errors import ChallengeError, ErrorCode, RequestError, TokenRejected
from emulator.store.memory import MemoryStore

NOW = 1_800_000_000.0
PAGE = "https://shop.example/checkout?step=2"


@pytest.fixture
def store():
    return MemoryStore()


@pytest.fixture
def signer():
    return TokenSigner("secret")


@pytest.fixture
def codec():
    return ChallengeCodec("secret")


@pytest.fixture
def apps():
    return AppRegistry(BUILTIN_APPS)


def start(apps, signer, codec, store, app_key="demo_app", now=NOW, ip="127.0.0.1", **fields):
    req = InitRequest.from_fields({"app_key": app_key, "action": "login", "referer": PAGE, **fields})
    return init_challenge(req, find_app(apps, req.app_key), signer=signer, codec=codec, store=store,
                          now=now, browser_ip=ip)


def finish(data, apps, signer, codec, store, now=NOW, ip="198.51.100.7", referer=None, **kw):
    ch = codec.decode(SolveRequest.from_fields({"challenge_id": data["challenge_id"], "referer": referer}).challenge_id)
    return solve_challenge(ch, find_app(apps, ch.app_key), referer=referer, signer=signer, store=store, now=now,
                           solver_ip=ip, **kw)


def sct(signer, app_key="demo_app", now=NOW, ttl=300, max_uses=1, ip=None, uid=None, action="register"):
    return signer.encode(signer.mint_server(app_key=app_key, action=action, now=now, ttl=ttl, max_uses=max_uses,
                                            binding_ip=ip, bind_uid=uid))


def check(token_raw, app, signer, store, *, backup=False, now=NOW):
    return validate(ValidateRequest(token_raw), app, signer=signer, store=store, now=now, request_key="k1",
                    caller_ip="10.0.0.1", backup=backup)


# --- parsing ---------------------------------------------------------------------------

def test_init_request_defaults_and_referer_header_fallback():
    req = InitRequest.from_fields({"app_key": "demo_app"}, referer_header="https://a.example/")
    assert (req.action, req.product, req.server_token, req.referer) == ("default", "popup", None, "https://a.example/")
    assert InitRequest.from_fields({"app_key": "x", "referer": PAGE}, "https://a.example/").referer == PAGE


@pytest.mark.parametrize("body, code", [
    ({"app_key": "demo_app", "action": "x" * 65}, ErrorCode.INVALID_ACTION),
    ({"app_key": "demo_app", "action": 7}, ErrorCode.INVALID_ACTION),
    ({"app_key": "demo_app", "product": "inline"}, ErrorCode.INVALID_REQUEST),
    ({"app_key": "demo_app", "server_token": ["sct_"]}, ErrorCode.INVALID_REQUEST),
    ({"app_key": "demo_app", "referer": 3}, ErrorCode.INVALID_REQUEST),
])
def test_init_request_refuses_bad_fields(body, code):
    with pytest.raises(RequestError) as err:
        InitRequest.from_fields(body)
    assert err.value.code is code


@pytest.mark.parametrize("body", [{}, {"challenge_id": ""}, {"challenge_id": 12}])
def test_solve_request_needs_a_challenge_id(body):
    with pytest.raises(RequestError) as err:
        SolveRequest.from_fields(body)
    assert err.value.code is ErrorCode.INVALID_REQUEST


@pytest.mark.parametrize("key, code", [(None, ErrorCode.INVALID_APP_KEY), ("nope", ErrorCode.INVALID_APP_KEY),
                                       ("disabled_app", ErrorCode.APP_DISABLED)])
def test_find_app_refuses_unknown_and_disabled_apps(apps, key, code):
    with pytest.raises(RequestError) as err:
        find_app(apps, key)
    assert err.value.code is code


# --- the signed challenge id -----------------------------------------------------------

def test_challenge_id_round_trips_and_starts_with_its_public_id(codec):
    ch = Challenge("abc123", "demo_app", "login", NOW, NOW + 120, uid="u1", referer=PAGE)
    raw = codec.encode(ch)
    assert raw.startswith("ch_abc123.")
    assert codec.decode(raw) == ch


@pytest.mark.parametrize("mangle", [
    lambda raw: raw[:-2] + ("AA" if not raw.endswith("AA") else "BB"),   # bad signature
    lambda raw: "ch_other" + raw[raw.index("."):],                       # id swapped
    lambda raw: raw.replace("ch_", "pt_", 1),                            # not a challenge
    lambda raw: "garbage",
])
def test_forged_challenge_ids_are_refused(codec, mangle):
    raw = codec.encode(Challenge("abc123", "demo_app", "login", NOW, NOW + 120))
    with pytest.raises(RequestError) as err:
        codec.decode(mangle(raw))
    assert err.value.code is ErrorCode.INVALID_REQUEST


def test_challenge_ids_keep_their_wire_format_byte_for_byte():
    """A challenge id minted now (uncompressed) and one minted by earlier versions (compressed)."""
    minted = ("ch_0123456789abcdef.eyJpZCI6IjAxMjM0NTY3ODlhYmNkZWYiLCJhcHAiOiJkZW1vX2FwcCIsImFjdCI6ImxvZ2luIiwiaWF0Ijox"
              "ODAwMDAwMDAwLjAsImV4cCI6MTgwMDAwMDA2MC4wfQ.NjVvLUhfaCMYdlRRmE9BM88N-qg")
    earlier = ("ch_0123456789abcdef..eJyrVspMUbJSMjA0MjYxNTO3sExMSk5JTVPSUUosKABKpKTm5seDmECB5BKgQE5-emYekJeZCOQZ"
               "WhhAgZ6BjlJqRQFCyAwoVAsA1akZEA.jSNDKSHf35fs4MYvAmzSb3x3JZc")
    ch = Challenge("0123456789abcdef", "demo_app", "login", 1800000000.0, 1800000060.0)
    assert ChallengeCodec("golden-secret").encode(ch) == minted
    assert ChallengeCodec("golden-secret").decode(minted) == ch
    assert ChallengeCodec("golden-secret").decode(earlier) == ch


def test_a_challenge_signature_differing_only_in_padding_bits_is_refused(codec):
    """One spelling per challenge id: its SHA-1 signature's last character carries 2 ignored
    padding bits, and none of the 3 twins passes."""
    b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    raw = codec.encode(Challenge("abc123", "demo_app", "login", NOW, NOW + 120))
    base = b64.index(raw[-1]) & ~0b11
    twins = [raw[:-1] + b64[base | bits] for bits in range(4) if b64[base | bits] != raw[-1]]
    assert len(twins) == 3
    for twin in twins:
        with pytest.raises(RequestError) as err:
            codec.decode(twin)
        assert err.value.code is ErrorCode.INVALID_REQUEST


def test_challenge_signed_with_another_secret_is_refused(codec):
    raw = ChallengeCodec("other").encode(Challenge("abc123", "demo_app", "login", NOW, NOW + 120))
    with pytest.raises(RequestError):
        codec.decode(raw)


def test_a_token_cannot_pass_as_a_challenge(codec, signer):
    """Different salts: a pass token's payload, dressed as a challenge id, fails its signature."""
    token = signer.encode(signer.mint_pass(app_key="demo_app", action="login", now=NOW, ttl=300))
    with pytest.raises(RequestError):
        codec.decode("ch_x." + token[len("pt_"):])


# --- init ------------------------------------------------------------------------------

def test_init_answers_the_widget_behaviour(apps, signer, codec, store):
    ch, data, reason = start(apps, signer, codec, store)
    assert data == {"challenge_id": data["challenge_id"], "expires_in": CHALLENGE_TTL, "action": "login",
                    "product": "popup", "mode": "click", "delay_ms": 0}
    assert ch.referer == PAGE and ch.uid is None and ch.expires_at == NOW + CHALLENGE_TTL
    assert ch.public_id in reason
    assert start(apps, signer, codec, store, "auto_pass_app")[1]["mode"] == "auto"
    assert start(apps, signer, codec, store, "always_fail_app")[1]["mode"] == "fail"


def test_init_with_a_server_token_takes_its_action_and_uid_and_counts_a_use(apps, signer, codec, store):
    raw = sct(signer, max_uses=2, ip="127.0.0.1", uid="user-9", action="register")
    ch, data, _ = start(apps, signer, codec, store, server_token=raw)
    assert (ch.action, ch.uid, data["action"]) == ("register", "user-9", "register")
    start(apps, signer, codec, store, server_token=raw)
    with pytest.raises(ChallengeError) as err:
        start(apps, signer, codec, store, server_token=raw)
    assert err.value.code is ErrorCode.SERVER_TOKEN_EXHAUSTED


@pytest.mark.parametrize("case, code", [
    ("missing", ErrorCode.SERVER_TOKEN_REQUIRED),
    ("garbled", ErrorCode.SERVER_TOKEN_INVALID),
    ("other_app", ErrorCode.SERVER_TOKEN_APP_MISMATCH),
    ("expired", ErrorCode.SERVER_TOKEN_EXPIRED),
    ("other_ip", ErrorCode.SERVER_TOKEN_BINDING_MISMATCH),
])
def test_init_server_token_failures(apps, signer, codec, store, case, code):
    tokens = {
        "missing": None,
        "garbled": "sct_nonsense",
        "other_app": sct(signer, app_key="demo_app"),
        "expired": sct(signer, app_key="server_token_app", now=NOW - 400, ttl=300),
        "other_ip": sct(signer, app_key="server_token_app", ip="203.0.113.9"),
    }
    with pytest.raises(ChallengeError) as err:
        start(apps, signer, codec, store, "server_token_app", server_token=tokens[case])
    assert err.value.code is code


# --- solve -----------------------------------------------------------------------------

def test_solve_mints_a_pass_token_with_the_solvers_ip_page_and_uid(apps, signer, codec, store):
    raw = sct(signer, uid="user-9", action="register")
    _, data, _ = start(apps, signer, codec, store, server_token=raw)
    result = finish(data, apps, signer, codec, store, now=NOW + 5, referer=PAGE + "#solved")
    assert result.data["pass_token"].startswith("pt_") and result.data["type"] == "pass"
    assert result.data["challenge_id"] == result.challenge.public_id
    assert result.data["expires_in"] == 300
    answer = check(result.data["pass_token"], find_app(apps, "demo_app"), signer, store, now=NOW + 6).data
    assert answer["challenge_id"] == result.challenge.public_id
    assert answer["action"] == "register" and answer["uid"] == "user-9"
    assert answer["captcha_args"]["user_ip"] == "198.51.100.7"
    assert answer["captcha_args"]["referer"] == PAGE + "#solved"
    assert answer["captcha_args"]["solved_at"] == int(NOW + 5)


def test_solve_falls_back_to_the_page_given_at_init(apps, signer, codec, store):
    _, data, _ = start(apps, signer, codec, store)
    token = finish(data, apps, signer, codec, store).token
    assert token.claims["ref"] == PAGE


def test_a_challenge_is_solved_at_most_once(apps, signer, codec, store):
    _, data, _ = start(apps, signer, codec, store)
    finish(data, apps, signer, codec, store, request_key="k7")
    store.journal_append({"request_key": "k6"}, capacity=10)
    store.journal_append({"request_key": "k7"}, capacity=10)  # the solving request, journaled as #2
    with pytest.raises(ChallengeError) as err:
        finish(data, apps, signer, codec, store)
    assert err.value.code is ErrorCode.CHALLENGE_EXPIRED
    assert "already solved by request #2" in err.value.reason


def test_a_challenge_expires_after_its_lifetime(apps, signer, codec, store):
    _, data, _ = start(apps, signer, codec, store)
    assert finish(data, apps, signer, codec, store, now=NOW + CHALLENGE_TTL - 1).token
    _, data, _ = start(apps, signer, codec, store)
    with pytest.raises(ChallengeError) as err:
        finish(data, apps, signer, codec, store, now=NOW + CHALLENGE_TTL)
    assert err.value.code is ErrorCode.CHALLENGE_EXPIRED


def test_fail_and_never_widgets(signer, codec, store):
    apps = AppRegistry([App("f1", "s", widget=Widget(solve="fail")),
                        App("f2", "s", widget=Widget(solve="fail", error="session_expired")),
                        App("f3", "s", widget=Widget(solve="fail", error="no_such_code")),
                        App("n1", "s", widget=Widget(solve="never"))])
    for key, code in [("f1", ErrorCode.INVALID_TOKEN), ("f2", ErrorCode.SESSION_EXPIRED),
                      ("f3", ErrorCode.INVALID_TOKEN), ("n1", ErrorCode.CHALLENGE_EXPIRED)]:
        _, data, _ = start(apps, signer, codec, store, key)
        with pytest.raises(ChallengeError) as err:
            finish(data, apps, signer, codec, store)
        assert err.value.code is code, key


def test_a_disabled_app_cannot_solve_its_old_challenges(signer, codec, store):
    _, data, _ = start(AppRegistry([App("a", "s")]), signer, codec, store, "a")
    with pytest.raises(RequestError) as err:
        finish(data, AppRegistry([App("a", "s", disabled=True)]), signer, codec, store)
    assert err.value.code is ErrorCode.APP_DISABLED


def test_quota_turns_the_widget_to_degraded_tokens(signer, codec, store):
    apps = AppRegistry([App("q", "s", quota=2)])
    kinds = []
    for _ in range(4):
        _, data, _ = start(apps, signer, codec, store, "q")
        kinds.append(finish(data, apps, signer, codec, store).token.kind)
    assert kinds == [Kind.PASS, Kind.PASS, Kind.DEGRADED, Kind.DEGRADED]
    store.reset("q")
    _, data, _ = start(apps, signer, codec, store, "q")
    assert finish(data, apps, signer, codec, store).token.kind is Kind.PASS


def test_degraded_app_hands_out_dg_tokens(apps, signer, codec, store):
    _, data, _ = start(apps, signer, codec, store, "degraded_app")
    result = finish(data, apps, signer, codec, store)
    assert result.data["pass_token"].startswith("dg_") and result.data["type"] == "degraded"
    answer = check(result.data["pass_token"], find_app(apps, "degraded_app"), signer, store).data
    assert answer["degraded"] is True and answer["action"] == "login"


def test_force_kind_degraded_for_fault_rules(apps, signer, codec, store):
    _, data, _ = start(apps, signer, codec, store)
    result = finish(data, apps, signer, codec, store, force_kind=Kind.DEGRADED)
    assert result.token.kind is Kind.DEGRADED and "forced" in result.reason
    _, data, _ = start(apps, signer, codec, store)
    with pytest.raises(ValueError):
        finish(data, apps, signer, codec, store, force_kind=Kind.OFFLINE)


# --- the bypass worker -----------------------------------------------------------------

def test_offline_token_is_accepted_only_by_the_backup_endpoint(apps, signer, store):
    req = OfflineRequest.from_fields({"app_key": "demo_app", "action": "login", "referer": PAGE})
    token, data, _ = issue_offline_token(req, find_app(apps, "demo_app"), signer=signer, store=store, now=NOW,
                                         solver_ip="10.9.8.7")
    assert data["pass_token"].startswith("offline_") and data["type"] == "offline" and data["mode"] == "click"
    app = find_app(apps, "demo_app")
    with pytest.raises(TokenRejected):
        check(data["pass_token"], app, signer, store)
    answer = check(data["pass_token"], app, signer, store, backup=True).data
    assert answer["valid"] is True and answer["offline"] is True
    assert answer["captcha_args"]["referer"] == PAGE and answer["captcha_args"]["user_ip"] == "10.9.8.7"


def offline(apps, signer, store, app_key="demo_app", ip="127.0.0.1", **fields):
    req = OfflineRequest.from_fields({"app_key": app_key, **fields})
    return issue_offline_token(req, find_app(apps, app_key), signer=signer, store=store, now=NOW, solver_ip=ip)


def test_offline_token_borrows_the_server_tokens_action_and_uid(apps, signer, store):
    raw = sct(signer, app_key="server_token_app", uid="user-3", action="register")
    token, _, _ = offline(apps, signer, store, "server_token_app", server_token=raw)
    assert token.claims["uid"] == "user-3" and token.claims["act"] == "register"


@pytest.mark.parametrize(("app_key", "make", "ip", "code"), [
    ("server_token_app", lambda signer: None, "127.0.0.1", ErrorCode.SERVER_TOKEN_REQUIRED),
    ("server_token_app", lambda signer: sct(signer, app_key="server_token_app")[:-3] + "xyz", "127.0.0.1",
     ErrorCode.SERVER_TOKEN_INVALID),
    ("server_token_app", lambda signer: sct(signer, app_key="demo_app"), "127.0.0.1",
     ErrorCode.SERVER_TOKEN_APP_MISMATCH),
    ("server_token_app", lambda signer: sct(signer, app_key="server_token_app", now=NOW - 600), "127.0.0.1",
     ErrorCode.SERVER_TOKEN_EXPIRED),
    ("demo_app", lambda signer: sct(signer, ip="10.0.0.7"), "10.0.0.8", ErrorCode.SERVER_TOKEN_BINDING_MISMATCH),
])
def test_offline_keeps_the_server_token_rules(apps, signer, store, app_key, make, ip, code):
    raw = make(signer)
    with pytest.raises(ChallengeError) as err:
        offline(apps, signer, store, app_key, ip=ip, **({"server_token": raw} if raw else {}))
    assert err.value.code is code


def test_offline_with_a_bound_server_token_from_its_ip_works(apps, signer, store):
    token, _, _ = offline(apps, signer, store, ip="10.0.0.7", server_token=sct(signer, ip="10.0.0.7"))
    assert token.kind is Kind.OFFLINE


def test_offline_after_the_quota_is_spent_hands_out_dg_tokens(apps, signer, store):
    token, data, reason = offline(apps, signer, store, "degraded_app")
    assert token.kind is Kind.DEGRADED and data["type"] == "degraded" and "quota" in reason


def test_offline_for_a_never_solving_widget_fails(signer, store):
    apps = AppRegistry([App("never_app", "s", widget=Widget(solve="never"))])
    with pytest.raises(ChallengeError) as err:
        offline(apps, signer, store, "never_app")
    assert err.value.code is ErrorCode.CHALLENGE_EXPIRED


def test_offline_for_a_disabled_app_is_app_disabled(apps):
    with pytest.raises(RequestError) as err:
        find_app(apps, "disabled_app")
    assert err.value.code is ErrorCode.APP_DISABLED


def test_offline_for_an_always_failing_widget_fails(apps, signer, store):
    with pytest.raises(ChallengeError) as err:
        offline(apps, signer, store, "always_fail_app")
    assert err.value.code is ErrorCode.INVALID_TOKEN

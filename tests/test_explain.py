"""explain_token: kind, genuineness, state in words, dry-run verdicts and the token's history."""

from __future__ import annotations

import pytest

from emulator.domain.explain import describe_entry, explain_token, iso, preview
from emulator.domain.journal import JournalQuery
from emulator.domain.tokens import TokenSigner
from tests.support.apps import DEMO


@pytest.fixture
def explain(runtime):
    def _explain(raw: str) -> dict:
        return explain_token(raw, signer=runtime.signer, apps=runtime.apps, store=runtime.store,
                             journal=runtime.journal, now=runtime.clock.now())

    return _explain


def test_a_fresh_token_is_valid_with_readable_claims_and_its_mint_in_the_history(mint, explain):
    token = mint(action="login", client_ip="10.0.0.5", uid="user-1")
    x = explain(token)
    assert (x["state"], x["kind"], x["signature_valid"], x["claims_verified"]) == ("valid", "pass", True, True)
    assert x["claims"]["app_key"] == "demo_app" and x["claims"]["action"] == "login"
    assert x["claims"]["user_ip"] == "10.0.0.5" and x["claims"]["uid"] == "user-1"
    assert x["validate"] == {"valid": True, "error": None,
                             "reason": "would be accepted (and consumed, unless keep_token)"}
    assert [h["endpoint"] for h in x["history"]] == ["mint"]
    assert x["expires_in_s"] == 300
    assert token not in str(x["preview"]) and x["preview"].endswith("…")


def test_explaining_is_a_dry_run_that_never_consumes(mint, explain, validate):
    token = mint()
    for _ in range(3):
        assert explain(token)["state"] == "valid"
    assert validate(token)["data"]["valid"] is True


def test_expired_says_by_how_long(mint, explain, fake_time):
    token = mint(ttl=60)
    fake_time.advance(98)
    x = explain(token)
    assert x["state"] == "expired"
    assert x["reason"] == "token expired 38 s ago (lifetime 60 s)"
    assert x["validate"]["error"] == "token_expired"


def test_consumed_says_when_by_which_request_and_from_where(mint, explain, client, runtime):
    token = mint()
    client.post("/v1/validate", json={"pass_token": token}, headers=DEMO, environ_base={"REMOTE_ADDR": "10.0.0.5"})
    consumer = runtime.journal.query(JournalQuery(endpoint="validate"))[-1]
    x = explain(token)
    assert x["state"] == "consumed"
    hhmmss = iso(consumer["virtual_ts"])[11:19]
    assert x["reason"] == f"consumed at {hhmmss} UTC by request #{consumer['id']} from 10.0.0.5"
    assert [h["outcome"] for h in x["history"]] == ["minted", "valid"]
    assert x["history"][1]["caller_ip"] == "10.0.0.5"
    assert "validated 1 time(s)" in x["summary"]


def test_not_an_emulator_token_is_forged(explain):
    x = explain("0.real-captchala-token")
    assert x["state"] == "forged" and x["kind"] is None and x["claims"] is None
    assert "does not start with" in x["reason"] and x["validate"]["error"] == "invalid_token"


def test_a_tampered_token_is_forged_and_shows_its_unverified_claims(mint, explain):
    token = mint(action="login")
    payload, signature = token.rsplit(".", 1)
    tampered = payload + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    x = explain(tampered)
    assert x["state"] == "forged" and x["signature_valid"] is False and x["claims_verified"] is False
    assert x["claims"]["app_key"] == "demo_app"
    assert "tampered or from another emulator" in x["reason"] and "demo_app" in x["reason"]


def test_a_token_from_another_emulator_secret_is_forged(runtime, explain):
    other = TokenSigner("another-secret")
    raw = other.encode(other.mint_pass(app_key="demo_app", action="login", now=runtime.clock.now(), ttl=300))
    x = explain(raw)
    assert x["state"] == "forged" and "different --secret" in x["reason"]


def test_a_server_token_is_the_wrong_kind_for_validate(client, explain):
    sct = client.post("/v1/server/challenge/issue", json={"action": "login"}, headers=DEMO).json["data"]["server_token"]
    x = explain(sct)
    assert x["state"] == "wrong_kind" and x["kind"] == "server"
    assert "serverToken" in x["reason"] and "invalid_token" in x["reason"]
    assert x["server_token"] == {"uses": 0, "max_uses": 1, "binding_ip": None}
    assert x["validate"]["error"] == "invalid_token"
    assert [h["endpoint"] for h in x["history"]] == ["issue"]


def test_a_token_of_an_app_the_emulator_does_not_know(runtime, explain):
    signer = runtime.signer
    raw = signer.encode(signer.mint_pass(app_key="ghost_app", action="login", now=runtime.clock.now(), ttl=300))
    x = explain(raw)
    assert x["state"] == "unknown_app" and "ghost_app" in x["reason"]


def test_degraded_and_offline_tokens(mint, explain):
    degraded = explain(mint(kind="degraded"))
    assert degraded["state"] == "degraded" and "quota_exhausted" in degraded["reason"]
    offline = explain(mint(kind="offline"))
    assert offline["state"] == "offline" and "/api/validate" in offline["reason"]
    assert offline["validate"]["error"] == "invalid_token"
    assert offline["backup_validate"]["valid"] is True


def test_disabled_and_always_fail_apps(mint, explain):
    disabled = explain(mint(app_key="disabled_app"))
    assert disabled["state"] == "app_disabled" and disabled["validate"]["error"] == "app_disabled"
    failing = explain(mint(app_key="always_fail_app"))
    assert failing["state"] == "always_fail" and "rejects every token" in failing["reason"]


def test_an_empty_string(explain):
    x = explain("   ")
    assert x["state"] == "empty" and x["validate"]["error"] == "empty_token" and x["history"] == []


def test_describe_entry_is_one_readable_sentence():
    entry = {"id": 17, "virtual_ts": 1_800_000_000.0, "endpoint": "validate", "caller_ip": "10.0.0.5",
             "app_key": "demo_app", "outcome": "rejected", "code": "token_consumed",
             "reason": "consumed at 08:00:00 UTC by request #12 from 10.0.0.5", "fault": "flaky/first"}
    assert describe_entry(entry) == ("#17 08:00:00 validate from 10.0.0.5 (demo_app): rejected token_consumed"
                                     " — consumed at 08:00:00 UTC by request #12 from 10.0.0.5 [fault flaky/first]")


def test_preview_keeps_short_strings_and_cuts_long_ones():
    assert preview("pt_short") == "pt_short"
    assert preview("pt_" + "x" * 100) == "pt_" + "x" * 17 + "…"


def test_history_says_when_and_from_where_the_widget_solved_it(client, explain):
    sct = client.post("/v1/server/challenge/issue", json={"action": "login"}, headers=DEMO).json["data"]["server_token"]
    browser = {"REMOTE_ADDR": "192.0.2.7"}
    init = client.post("/v1/challenge/init", json={"app_key": "demo_app", "action": "login", "server_token": sct},
                       environ_base=browser).json["data"]
    solved = client.post("/v1/challenge/solve", json={"challenge_id": init["challenge_id"]},
                         environ_base=browser).json["data"]
    client.post("/v1/validate", json={"pass_token": solved["pass_token"]}, headers=DEMO,
                environ_base={"REMOTE_ADDR": "10.0.0.5"})
    x = explain(solved["pass_token"])
    assert [(h["endpoint"], h["caller_ip"]) for h in x["history"]] == [("challenge_solve", "192.0.2.7"),
                                                                       ("validate", "10.0.0.5")]
    assert x["claims"]["user_ip"] == "192.0.2.7"
    server = explain(sct)
    assert [(h["endpoint"], h["caller_ip"]) for h in server["history"]] == [("issue", "127.0.0.1"),
                                                                            ("challenge_init", "192.0.2.7")]
    assert server["server_token"]["uses"] == 1 and server["state"] == "exhausted"

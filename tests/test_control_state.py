"""Control plane: apps, the journal (filters, wait), explain and the virtual clock over HTTP,
and — for every error code of the core issue — the reason in words in the header, the journal
and the token's explanation."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from emulator.domain.explain import iso
from emulator.domain.journal_filter import JournalFilter, wait_for
from emulator.domain.validation import consumed_reason
from tests.support.apps import DEMO

REASON = "X-Captchala-Emulator-Reason"


def journal(client, **filters) -> list[dict]:
    response = client.get("/_emulator/requests", query_string=filters)
    assert response.status_code == 200, response.json
    return response.json["requests"]


def explain(client, token: str) -> dict:
    response = client.get(f"/_emulator/tokens/{token}")
    assert response.status_code == 200, response.json
    return response.json


# --- every error code explains itself -------------------------------------------------

@dataclass
class Failure:
    response: object
    token: str | None
    code: str
    reason: str
    state: str | None  # what explain says about the token now (None: no token involved)


def _validate(client, token, headers=DEMO, **fields):
    return client.post("/v1/validate", json={"pass_token": token, **fields}, headers=headers)


def empty_token(client, mint, fake_time):
    return Failure(_validate(client, ""), None, "empty_token", "pass_token is empty or missing", None)


def forged(client, mint, fake_time):
    token = "pt_eyJhcHAiOiJkZW1vX2FwcCJ9.forged"
    return Failure(_validate(client, token), token, "invalid_token",
                   "bad signature: forged, tampered or signed with another secret", "forged")


def tampered(client, mint, fake_time):
    payload, signature = mint().rsplit(".", 1)
    token = payload + "." + signature[::-1]
    return Failure(_validate(client, token), token, "invalid_token",
                   "bad signature: forged, tampered or signed with another secret", "forged")


def wrong_kind(client, mint, fake_time):
    issued = client.post("/v1/server/challenge/issue", json={"action": "login"}, headers=DEMO).json["data"]
    token = issued["server_token"]
    return Failure(_validate(client, token), token, "invalid_token",
                   "wrong kind: a server token (sct_) where pt_, dg_, offline_ is expected", "wrong_kind")


def other_apps_token(client, mint, fake_time):
    token = mint(app_key="auto_pass_app")
    return Failure(_validate(client, token), token, "invalid_token",
                   "token was minted for app auto_pass_app, not demo_app", "valid")


def expired(client, mint, fake_time):
    token = mint(ttl=60)
    client.post("/_emulator/clock/advance", json={"seconds": 98})
    return Failure(_validate(client, token), token, "token_expired", "token expired 38 s ago (lifetime 60 s)",
                   "expired")


def consumed(client, mint, fake_time):
    token = mint()
    first = _validate(client, token, client_ip="10.0.0.5")
    assert first.json["data"]["valid"] is True
    consumer = journal(client, endpoint="validate")[-1]
    reason = consumed_reason({"at": consumer["virtual_ts"], "caller_ip": "127.0.0.1"}, consumer["id"])
    assert reason == f"consumed at {iso(consumer['virtual_ts'])[11:19]} UTC by request #{consumer['id']} from 127.0.0.1"
    return Failure(_validate(client, token), token, "token_consumed", reason, "consumed")


def binding_mismatch(client, mint, fake_time):
    token = mint(app_key="strict_ip_app", client_ip="10.0.0.5")
    headers = {"X-App-Key": "strict_ip_app", "X-App-Secret": "strict_ip_secret"}
    return Failure(_validate(client, token, headers, client_ip="10.0.0.9"), token, "binding_mismatch",
                   "client_ip 10.0.0.9 differs from the solver's IP 10.0.0.5 (strict IP binding)", "valid")


def invalid_app_key(client, mint, fake_time):
    token = mint()
    headers = {"X-App-Key": "no_such_app", "X-App-Secret": "demo_secret"}
    return Failure(_validate(client, token, headers), token, "invalid_app_key", "no app with key 'no_such_app'",
                   "valid")


def missing_app_key(client, mint, fake_time):
    token = mint()
    return Failure(_validate(client, token, {}), token, "invalid_app_key", "X-App-Key header is missing", "valid")


def wrong_secret(client, mint, fake_time):
    token = mint()
    headers = {"X-App-Key": "demo_app", "X-App-Secret": "not-it"}
    return Failure(_validate(client, token, headers), token, "invalid_app_secret",
                   "secret does not match app demo_app", "valid")


def another_apps_secret(client, mint, fake_time):
    token = mint()
    headers = {"X-App-Key": "demo_app", "X-App-Secret": "auto_pass_secret"}
    return Failure(_validate(client, token, headers), token, "invalid_app_secret",
                   "secret belongs to app auto_pass_app, not demo_app", "valid")


def app_disabled(client, mint, fake_time):
    token = mint(app_key="disabled_app")
    headers = {"X-App-Key": "disabled_app", "X-App-Secret": "disabled_secret"}
    return Failure(_validate(client, token, headers), token, "app_disabled", "app disabled_app is disabled",
                   "app_disabled")


def invalid_action(client, mint, fake_time):
    response = client.post("/v1/server/challenge/issue", json={"action": ""}, headers=DEMO)
    return Failure(response, None, "invalid_action", "action is required and must be a non-empty string", None)


SCENARIOS: list[Callable] = [empty_token, forged, tampered, wrong_kind, other_apps_token, expired, consumed,
                             binding_mismatch, invalid_app_key, missing_app_key, wrong_secret,
                             another_apps_secret, app_disabled, invalid_action]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_every_failure_says_why_in_the_header_the_journal_and_explain(client, mint, fake_time, scenario):
    failure = scenario(client, mint, fake_time)
    body = failure.response.json
    assert failure.code in (body["data"].get("error"), body.get("error"))
    assert failure.response.headers[REASON] == failure.reason

    entry = journal(client, code=failure.code)[-1]
    assert entry["reason"] == failure.reason and entry["outcome"] in ("rejected", "error")

    if failure.token is None:
        return
    x = explain(client, failure.token)
    assert x["state"] == failure.state
    last = x["history"][-1]
    assert (last["id"], last["code"], last["reason"]) == (entry["id"], failure.code, failure.reason)
    assert failure.code in last["text"] and failure.reason in last["text"]
    assert failure.reason in x["summary"]


# --- apps -------------------------------------------------------------------------------

def test_apps_lists_every_app_with_its_secret(client):
    body = client.get("/_emulator/apps").json
    pairs = {a["app_key"]: a["app_secret"] for a in body["apps"]}
    assert pairs["demo_app"] == "demo_secret" and pairs["disabled_app"] == "disabled_secret"
    assert body["count"] == len(pairs) == 7
    strict = next(a for a in body["apps"] if a["app_key"] == "strict_ip_app")
    assert strict["ip_binding"] == "strict" and strict["widget"]["solve"] == "click"


# --- journal ----------------------------------------------------------------------------

def test_journal_filters_by_endpoint_app_token_outcome_code_after_and_limit(client, mint):
    a, b = mint(), mint(app_key="auto_pass_app")
    _validate(client, a)
    _validate(client, a)
    _validate(client, b, {"X-App-Key": "auto_pass_app", "X-App-Secret": "auto_pass_secret"})
    every = journal(client)
    assert [e["endpoint"] for e in every] == ["mint", "mint", "validate", "validate", "validate"]
    assert [e["id"] for e in every] == sorted(e["id"] for e in every)
    assert len(journal(client, endpoint="validate")) == 3
    assert len(journal(client, app_key="auto_pass_app")) == 2
    assert [e["outcome"] for e in journal(client, token=a)] == ["minted", "valid", "rejected"]
    assert [e["code"] for e in journal(client, outcome="rejected")] == ["token_consumed"]
    assert len(journal(client, code="token_consumed", app_key="auto_pass_app")) == 0
    assert [e["id"] for e in journal(client, after=every[2]["id"])] == [every[3]["id"], every[4]["id"]]
    assert [e["id"] for e in journal(client, limit=2)] == [every[3]["id"], every[4]["id"]]  # newest two
    assert [e["id"] for e in journal(client, after=every[0]["id"], limit=1)] == [every[1]["id"]]  # oldest after
    assert all(a not in str(e) for e in every), "the journal keeps fingerprints, never raw tokens"


def test_journal_answer_carries_latest_id_so_pollers_notice_a_reset(client, mint):
    mint()
    mint()
    assert client.get("/_emulator/requests").json["latest_id"] == 2
    client.post("/_emulator/reset")
    body = client.get("/_emulator/requests").json
    assert body == {"requests": [], "count": 0, "latest_id": 0}


def _poll_all(client, after: int, **filters) -> list[int]:
    """What a poller sees passing each answer's latest_id back as `after` until nothing is new."""
    seen: list[int] = []
    while True:
        body = client.get("/_emulator/requests", query_string={**filters, "after": after}).json
        seen += [e["id"] for e in body["requests"]]
        if not body["requests"]:
            return seen
        after = body["latest_id"]


def test_latest_id_passed_back_as_after_pages_through_every_entry_once(client, mint):
    mint()
    start = client.get("/_emulator/requests").json["latest_id"]
    for _ in range(6):
        mint()
    assert _poll_all(client, start, limit=2) == list(range(start + 1, start + 7))
    assert _poll_all(client, start, limit=2, endpoint="mint", outcome="minted") == list(range(start + 1, start + 7))


def test_an_entry_numbered_while_the_journal_is_searched_is_in_the_next_answer(client, mint, runtime):
    """latest_id covers what this answer searched, not what arrived after the search."""
    mint()
    start = client.get("/_emulator/requests").json["latest_id"]
    mint()
    search = runtime.journal.query

    def search_then_another_request_lands(query):
        rows = search(query)
        runtime.journal.query = search  # once
        runtime.journal.record({"endpoint": "validate", "app_key": "demo_app", "request_key": "late"})
        return rows

    runtime.journal.query = search_then_another_request_lands
    first = client.get("/_emulator/requests", query_string={"after": start}).json
    assert [e["id"] for e in first["requests"]] == [start + 1] and first["latest_id"] == start + 1
    second = client.get("/_emulator/requests", query_string={"after": first["latest_id"]}).json
    assert [e["request_key"] for e in second["requests"]] == ["late"]


@pytest.mark.parametrize("query, message", [
    ("colour=red", "unknown filter(s) colour"),
    ("limit=0", "limit must be at least 1"),
    ("limit=many", "limit 'many' is not an integer"),
    ("after=-1", "after must be at least 0"),
    ("limit=%EF%BC%95", "is not an integer"),  # a fullwidth 5: only ASCII digits are a number here
    ("after=%D9%A5", "is not an integer"),  # an Arabic-Indic 5
    ("limit=1_0", "limit '1_0' is not an integer"),
    ("limit=%2B5", "limit '+5' is not an integer"),
    ("outcome=bogus", "outcome 'bogus' is not one of degraded, error, fault, minted, ok, rejected, valid"),
])
def test_bad_journal_filters_are_a_clear_400(client, query, message):
    response = client.get("/_emulator/requests?" + query)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request" and message in response.json["message"]


def test_a_large_limit_is_clamped_to_the_journal_capacity(client, mint):
    mint()
    assert client.get("/_emulator/requests?limit=100000").json["count"] == 1


# --- wait ---------------------------------------------------------------------------------

def test_wait_returns_as_soon_as_a_matching_validate_arrives(client, mint):
    token = mint()
    after = client.get("/_emulator/requests").json["latest_id"]
    answer: dict = {}
    started = threading.Event()

    def waiter():
        started.set()
        answer["response"] = client.get("/_emulator/requests/wait", query_string={
            "endpoint": "validate", "token": token, "after": after, "timeout": 30})

    thread = threading.Thread(target=waiter)
    thread.start()
    started.wait(5)
    client.post("/v1/server/challenge/issue", json={"action": "login"}, headers=DEMO)  # not a match
    _validate(client, token)
    thread.join(25)
    assert not thread.is_alive(), "the wait did not return after the matching validate"
    response = answer["response"]
    assert response.status_code == 200 and response.json["timed_out"] is False
    [entry] = response.json["requests"]
    assert entry["endpoint"] == "validate" and entry["outcome"] == "valid"


def test_wait_times_out_cleanly_with_408(client, mint):
    mint()
    response = client.get("/_emulator/requests/wait?endpoint=validate&timeout=0.2")
    assert response.status_code == 408
    assert response.json == {"requests": [], "count": 0, "latest_id": 1, "timed_out": True, "timeout": 0.2}


def test_wait_answers_at_once_when_a_match_already_exists(client, mint):
    mint()
    response = client.get("/_emulator/requests/wait?endpoint=mint&timeout=30")
    assert response.status_code == 200 and response.json["requests"][0]["endpoint"] == "mint"


@pytest.mark.parametrize("timeout", ["-1", "61", "soon", "nan"])
def test_wait_refuses_a_bad_timeout(client, timeout):
    response = client.get(f"/_emulator/requests/wait?timeout={timeout}")
    assert response.status_code == 400 and "timeout" in response.json["message"]


class FakeMonotonic:
    """Fake time for the wait loop: sleeping advances it, and a hook can add entries."""

    def __init__(self, on_sleep=None):
        self.now = 0.0
        self.sleeps: list[float] = []
        self.on_sleep = on_sleep

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep:
            self.on_sleep(len(self.sleeps))


def _entry(i: int, endpoint: str) -> dict:
    return {"id": i, "endpoint": endpoint, "app_key": "demo_app", "token_fp": None, "token_id": None, "outcome": "ok"}


def test_wait_for_polls_the_store_until_a_match_lands(runtime):
    def land(n: int) -> None:
        if n == 2:
            runtime.journal.record(_entry(1, "issue"))
        if n == 4:
            runtime.journal.record(_entry(2, "validate"))

    fake = FakeMonotonic(land)
    rows = wait_for(runtime.journal, JournalFilter(endpoint="validate"), 10, interval=0.05,
                    sleep=fake.sleep, monotonic=fake)
    assert [r["id"] for r in rows] == [2]
    assert fake.sleeps == [0.05] * 4


def test_wait_for_gives_up_at_the_timeout_without_oversleeping(runtime):
    fake = FakeMonotonic()
    assert wait_for(runtime.journal, JournalFilter(endpoint="validate"), 0.12, interval=0.05,
                    sleep=fake.sleep, monotonic=fake) == []
    assert fake.sleeps == pytest.approx([0.05, 0.05, 0.02])


# --- explain route --------------------------------------------------------------------

def test_explain_route_rejects_oversized_input(client):
    response = client.get("/_emulator/tokens/pt_" + "x" * 5000)
    assert response.status_code == 400 and "longer than 4096" in response.json["message"]


def test_explain_route_takes_any_string(client):
    x = explain(client, "hello world/../x")
    assert x["state"] == "forged" and x["kind"] is None


# --- clock ---------------------------------------------------------------------------------

def test_clock_get_put_advance(client, fake_time):
    assert client.get("/_emulator/clock").json["offset"] == 0
    body = client.put("/_emulator/clock", json={"offset": 120}).json
    assert body["offset"] == 120 and body["now"] == body["real_now"] + 120
    assert body["now_iso"] == iso(fake_time.now + 120)
    assert client.post("/_emulator/clock/advance", json={"seconds": 30.5}).json["offset"] == 150.5
    assert client.post("/_emulator/clock/advance?seconds=-50").json["offset"] == 100.5
    client.post("/_emulator/reset")
    assert client.get("/_emulator/clock").json["offset"] == 0


def test_advancing_the_clock_expires_tokens_without_waiting(client, mint):
    token = mint(ttl=60)
    client.post("/_emulator/clock/advance", json={"seconds": 59})
    assert _validate(client, token, keep_token=True).json["data"]["valid"] is True
    client.post("/_emulator/clock/advance", json={"seconds": 1})
    assert _validate(client, token).json["data"]["error"] == "token_expired"


def test_a_scoped_reset_keeps_the_clock(client):
    client.put("/_emulator/clock", json={"offset": 10})
    client.post("/_emulator/reset?app_key=demo_app")
    assert client.get("/_emulator/clock").json["offset"] == 10


@pytest.mark.parametrize("query", ["app_key=", "app_key=%20%20"])
def test_an_empty_app_key_on_reset_is_a_400_never_a_full_reset(client, mint, query):
    """A script whose variable came out empty must not wipe every app's state."""
    token = mint()
    assert _validate(client, token).json["data"]["valid"] is True
    answer = client.post("/_emulator/reset?" + query)
    assert answer.status_code == 400 and "app_key is empty" in answer.json["message"]
    assert _validate(client, token).json["data"]["error"] == "token_consumed"


def test_advances_that_add_up_past_ten_years_are_refused_and_leave_the_clock(client):
    nine_years = 9 * 365 * 86400
    assert client.post("/_emulator/clock/advance", json={"seconds": nine_years}).status_code == 200
    refused = client.post("/_emulator/clock/advance", json={"seconds": nine_years})
    assert refused.status_code == 400 and "more than ten years" in refused.json["message"]
    assert client.get("/_emulator/clock").json["offset"] == nine_years
    assert client.post("/_emulator/clock/advance", json={"seconds": -nine_years}).json["offset"] == 0


@pytest.mark.parametrize("method, path, body", [
    ("put", "/_emulator/clock", {"offset": "soon"}),
    ("put", "/_emulator/clock", {"offset": True}),
    ("put", "/_emulator/clock", {}),
    ("put", "/_emulator/clock", {"offset": 1e12}),
    ("post", "/_emulator/clock/advance", {"seconds": None}),
    ("post", "/_emulator/clock/advance", {"seconds": [1]}),
])
def test_bad_clock_values_are_a_clear_400(client, method, path, body):
    response = getattr(client, method)(path, json=body)
    assert response.status_code == 400 and response.json["error"] == "invalid_request"
    assert client.get("/_emulator/clock").json["offset"] == 0


def test_a_clock_body_that_is_not_json_is_a_clear_400(client):
    response = client.put("/_emulator/clock", data="{offset", content_type="application/json")
    assert response.status_code == 400 and "not valid JSON" in response.json["message"]

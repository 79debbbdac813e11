"""The browser endpoints through the Flask test client (scripts, CORS, init/solve/offline, journal),
plus one real-gunicorn race: of many concurrent solves of one challenge, exactly one wins."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
import requests

from emulator.app import create_app
from emulator.domain.challenges import CHALLENGE_TTL
from emulator.domain.journal import JournalQuery
from emulator.domain.tokens import Kind, TokenSigner
from emulator.runtime import build_runtime
from emulator.settings import Settings
from tests.support.servers import running_emulator

PAGE = "http://127.0.0.1:5173/signup.html"
ORIGIN = {"Origin": "http://127.0.0.1:5173"}


def init(client, **fields):
    body = {"app_key": "demo_app", "action": "login", "referer": PAGE, **fields}
    return client.post("/v1/challenge/init", json=body, headers=ORIGIN).json


def solve(client, challenge_id, **fields):
    return client.post("/v1/challenge/solve", json={"challenge_id": challenge_id, **fields}, headers=ORIGIN).json


# --- scripts -----------------------------------------------------------------------------

@pytest.mark.parametrize("path, mimetype, marker", [
    ("/captchala-loader.js", "text/javascript", b"window.loadCaptchala"),
    ("/captchala.js", "text/javascript", b"window.Captchala"),
    ("/captchala.css", "text/css", b".cle"),
])
def test_scripts_are_served_cross_origin_and_revalidated(client, path, mimetype, marker):
    response = client.get(path, headers=ORIGIN)
    assert response.status_code == 200
    assert response.mimetype == mimetype and marker in response.data
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Cache-Control"] == "no-cache"
    again = client.get(path, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_scripts_are_journaled_under_their_contract_names(client, runtime):
    for path in ("/captchala-loader.js", "/captchala.js", "/captchala.css"):
        client.get(path)
    entries = runtime.journal.query(JournalQuery())
    assert [e["endpoint"] for e in entries] == ["loader", "sdk", "sdk"]


@pytest.mark.parametrize("path", ["/v1/challenge/init", "/v1/challenge/solve", "/v1/challenge/offline"])
def test_preflight_allows_any_origin(client, runtime, path):
    response = client.options(path, headers={**ORIGIN, "Access-Control-Request-Method": "POST",
                                             "Access-Control-Request-Headers": "content-type",
                                             "Access-Control-Request-Private-Network": "true"})
    assert response.status_code in (200, 204)
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Headers"] == "content-type"
    assert response.headers["Access-Control-Allow-Private-Network"] == "true"
    assert runtime.journal.query(JournalQuery()) == []  # preflights are not API calls


# --- init and solve ----------------------------------------------------------------------

def test_init_solve_validate_round_trip(client, runtime, validate, fake_time):
    started = init(client)
    assert started["code"] == 0
    data = started["data"]
    assert data["mode"] == "click" and data["delay_ms"] == 0 and data["expires_in"] == CHALLENGE_TTL
    solved = client.post("/v1/challenge/solve", json={"challenge_id": data["challenge_id"], "answer": {"x": 1}},
                         headers=ORIGIN)
    assert solved.headers["Access-Control-Allow-Origin"] == "*"
    assert solved.headers["Cache-Control"] == "no-store"
    result = solved.json["data"]
    assert result["pass_token"].startswith("pt_") and result["action"] == "login"
    answer = validate(result["pass_token"])["data"]
    assert answer["valid"] is True and answer["challenge_id"] == result["challenge_id"]
    assert answer["captcha_args"]["referer"] == PAGE and answer["captcha_args"]["user_ip"] == "127.0.0.1"
    entries = {e["endpoint"]: e for e in runtime.journal.query(JournalQuery())}
    assert entries["challenge_init"]["app_key"] == "demo_app"
    assert entries["challenge_solve"]["token_kind"] == "pass"
    assert entries["challenge_solve"]["challenge_id"] == result["challenge_id"]


def test_referer_header_is_the_fallback_for_the_page_url(client, validate):
    data = client.post("/v1/challenge/init", json={"app_key": "demo_app"},
                       headers={"Referer": "http://127.0.0.1:5173/"}).json["data"]
    token = solve(client, data["challenge_id"])["data"]["pass_token"]
    assert validate(token)["data"]["captcha_args"]["referer"] == "http://127.0.0.1:5173/"


def test_challenge_errors_reach_the_widget_as_envelopes(client, runtime):
    body = client.post("/v1/challenge/init", json={"app_key": "server_token_app"})
    assert body.status_code == 200
    assert body.json == {"code": 400, "msg": "a server token is required", "error": "server_token_required",
                         "data": {"error": "server_token_required"}}
    entry = runtime.journal.query(JournalQuery(endpoint="challenge_init"))[-1]
    assert entry["outcome"] == "rejected" and entry["code"] == "server_token_required"


@pytest.mark.parametrize("app_key, code", [("disabled_app", "app_disabled"), ("nope", "invalid_app_key"),
                                           ("", "invalid_app_key")])
def test_init_refuses_disabled_and_unknown_apps(client, app_key, code):
    body = init(client, app_key=app_key)
    assert body["code"] != 0 and body["data"]["error"] == code


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_bad_bodies_are_clear_errors(client, raw):
    for path in ("/v1/challenge/init", "/v1/challenge/solve", "/v1/challenge/offline"):
        response = client.post(path, data=raw, content_type="application/json")
        assert response.status_code == 200
        assert response.json["error"] == "invalid_request"


def test_forged_challenge_id_is_refused(client):
    assert solve(client, "ch_1234.abcd.efgh")["data"]["error"] == "invalid_request"


def test_second_solve_and_expired_challenge(client, runtime):
    first = init(client)["data"]["challenge_id"]
    assert solve(client, first)["code"] == 0
    assert solve(client, first)["data"]["error"] == "challenge_expired"
    second = init(client)["data"]["challenge_id"]
    runtime.clock.advance(CHALLENGE_TTL)  # the shared virtual clock
    assert solve(client, second)["data"]["error"] == "challenge_expired"


def test_server_token_use_is_counted_in_the_store(client):
    sct = client.post("/v1/server/challenge/issue", json={"action": "login", "max_uses": 1, "bind_uid": "u7"},
                      headers={"X-App-Key": "server_token_app", "X-App-Secret": "server_token_secret"}).json
    raw = sct["data"]["server_token"]
    assert init(client, app_key="server_token_app", server_token=raw)["code"] == 0
    assert init(client, app_key="server_token_app", server_token=raw)["data"]["error"] == "server_token_exhausted"


def test_bound_server_token_checks_the_browser_ip(client):
    headers = {"X-App-Key": "server_token_app", "X-App-Secret": "server_token_secret"}
    other = client.post("/v1/server/challenge/issue", json={"action": "login", "binding_ip": "10.1.2.3"},
                        headers=headers).json["data"]["server_token"]
    assert init(client, app_key="server_token_app", server_token=other)["data"]["error"] == (
        "server_token_binding_mismatch")


def test_challenges_are_shared_by_every_worker_of_one_store(settings, fake_time):
    """Two apps on the same SQLite file stand in for two gunicorn workers."""
    worker_a = create_app(runtime=build_runtime(settings, real_time=fake_time)).test_client()
    worker_b = create_app(runtime=build_runtime(settings, real_time=fake_time)).test_client()
    challenge = init(worker_a)["data"]["challenge_id"]
    assert solve(worker_b, challenge)["code"] == 0
    assert solve(worker_a, challenge)["data"]["error"] == "challenge_expired"


def test_quota_spent_turns_solves_degraded(client, validate):
    token = solve(client, init(client, app_key="degraded_app")["data"]["challenge_id"])["data"]
    assert token["pass_token"].startswith("dg_") and token["type"] == "degraded"
    headers = {"X-App-Key": "degraded_app", "X-App-Secret": "degraded_secret"}
    assert validate(token["pass_token"], headers=headers)["data"]["degraded"] is True


def test_offline_bypass_worker(client, validate):
    body = client.post("/v1/challenge/offline", json={"app_key": "demo_app", "action": "login", "referer": PAGE},
                       headers=ORIGIN)
    assert body.headers["Access-Control-Allow-Origin"] == "*"
    token = body.json["data"]["pass_token"]
    assert token.startswith("offline_")
    assert validate(token)["data"]["error"] == "invalid_token"
    assert validate(token, path="/api/validate")["data"]["valid"] is True
    disabled = client.post("/v1/challenge/offline", json={"app_key": "disabled_app"}).json
    assert disabled["data"]["error"] == "app_disabled"


def test_widget_settings_of_an_apps_file_reach_the_init_answer(tmp_path, fake_time):
    apps = tmp_path / "apps.yaml"
    apps.write_text("- {app_key: slow_app, app_secret: s, widget: {solve: auto, delay_ms: 1500}}\n")
    settings = Settings(store="memory://", secret="x", apps=str(apps), quiet=True)
    client = create_app(runtime=build_runtime(settings, real_time=fake_time)).test_client()
    data = init(client, app_key="slow_app")["data"]
    assert (data["mode"], data["delay_ms"]) == ("auto", 1500)


def test_fault_engine_can_force_degraded_tokens(client):
    rule = {"name": "dg", "match": {"endpoint": "challenge_solve"}, "effect": {"degraded": True}}
    assert client.put("/_emulator/profile", json={"profile": {"rules": [rule]}}).status_code == 200

    token = solve(client, init(client)["data"]["challenge_id"])["data"]["pass_token"]
    assert token.startswith("dg_")


# --- real processes ----------------------------------------------------------------------

@pytest.mark.integration
def test_concurrent_solves_of_one_challenge_across_workers_give_one_token(tmp_path):
    with running_emulator("--workers", "2", "--threads", "16", "--store", f"sqlite:///{tmp_path / 's.db'}",
                          "--secret", "race") as server:
        url = server.url
        with ThreadPoolExecutor(16) as pool:
            for round_ in range(5):
                challenge = requests.post(url + "/v1/challenge/init", json={"app_key": "demo_app"},
                                          timeout=10).json()["data"]["challenge_id"]
                barrier = Barrier(16)

                def hit(_, challenge=challenge, barrier=barrier):
                    with requests.Session() as s:  # its own connection: spread over the workers
                        barrier.wait(10)
                        return s.post(url + "/v1/challenge/solve", json={"challenge_id": challenge},
                                      timeout=20).json()

                answers = list(pool.map(hit, range(16)))
                wins = [a for a in answers if a["code"] == 0]
                assert len(wins) == 1, f"round {round_}: {len(wins)} tokens"
                assert all(a["data"]["error"] == "challenge_expired" for a in answers if a["code"] != 0)
                token = wins[0]["data"]["pass_token"]
                assert TokenSigner("race").load(token, accept=(Kind.PASS,)).app_key == "demo_app"


@pytest.mark.parametrize(("app_key", "code"), [("server_token_app", "server_token_required"),
                                               ("disabled_app", "app_disabled"),
                                               ("always_fail_app", "invalid_token")])
def test_the_offline_fallback_keeps_the_apps_rules(client, app_key, code):
    answer = client.post("/v1/challenge/offline", json={"app_key": app_key}).json
    assert answer["code"] != 0 and answer["data"]["error"] == code


def test_the_offline_fallback_hands_out_dg_tokens_once_the_quota_is_spent(client):
    answer = client.post("/v1/challenge/offline", json={"app_key": "degraded_app"}).json
    assert answer["data"]["pass_token"].startswith("dg_") and answer["data"]["type"] == "degraded"

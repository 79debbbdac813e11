"""GET /_emulator/tokens/<token> answers the token's life as `timeline`: the server token it came
from, the challenge inits, the solve and every validate, with the time between stages and the slow
or failing stage marked. Time passes through PUT /_emulator/clock only."""

from __future__ import annotations

from tests.support.apps import DEMO
from tests.test_diagnosis import BACKEND, PAGE, USER, Flow

SCT_APP = {"X-App-Key": "server_token_app", "X-App-Secret": "server_token_secret"}


def explain(client, token: str) -> dict:
    response = client.get("/_emulator/tokens/" + token)
    assert response.status_code == 200
    return response.json


def test_the_whole_chain_from_server_token_to_validate(client):
    flow = Flow(client)
    issued = client.post("/v1/server/challenge/issue", json={"action": "login", "ttl": 600, "max_uses": 2,
                                                             "binding_ip": USER}, headers=SCT_APP).json["data"]
    flow.wait(3)
    init = flow.init("server_token_app", server_token=issued["server_token"], product="float")["data"]
    flow.wait(7)
    token = flow.solve(init["challenge_id"])["data"]["pass_token"]
    flow.wait(20)
    answer = flow.validate(token, headers=SCT_APP, client_ip=USER, keep_token=True)
    assert answer["data"]["valid"] is True
    timeline = explain(client, token)["timeline"]
    assert [s["stage"] for s in timeline] == ["server_token_issued", "challenge_init", "solved", "validate"]
    assert [s["since_previous_s"] for s in timeline] == [None, 3.0, 7.0, 20.0]
    issue, start, solve, check = timeline
    assert issue["detail"] == f"sct_ ttl 600 s, max_uses 2, binding {USER}"
    assert (start["caller_ip"], start["page"], start["product"], start["outcome"]) == (USER, PAGE, "float", "ok")
    assert solve["caller_ip"] == USER
    assert (check["caller_ip"], check["client_ip"], check["keep_token"]) == (BACKEND, USER, True)
    assert check["outcome"] == "valid" and "280 s before expiry" in check["detail"]
    assert not any(s["slow"] or s["failing"] for s in timeline)
    assert all(s["at"].endswith("Z") for s in timeline)


def test_a_late_validate_is_slow_and_failing(client):
    flow = Flow(client)
    token = flow.token()
    flow.wait(400)
    assert flow.validate(token)["data"]["error"] == "token_expired"
    timeline = explain(client, token)["timeline"]
    assert [s["stage"] for s in timeline] == ["challenge_init", "solved", "validate"]
    late = timeline[-1]
    assert late["slow"] and late["failing"] and late["outcome"] == "rejected token_expired"
    assert late["since_previous_s"] == 400.0 and "100 s after expiry" in late["detail"]
    assert not timeline[1]["slow"]


def test_a_forged_token_has_the_requests_that_carried_it(client):
    client.post("/v1/validate", json={"pass_token": "pt_garbage"}, headers=DEMO)
    timeline = explain(client, "pt_garbage")["timeline"]
    stages = [(s["stage"], s["outcome"], s["failing"]) for s in timeline]
    assert stages == [("validate", "rejected invalid_token", True)]


def test_a_server_tokens_timeline_shows_its_issue_and_every_init_it_served(client):
    flow = Flow(client)
    sct = client.post("/v1/server/challenge/issue", json={"action": "login", "ttl": 60, "max_uses": 1},
                      headers=SCT_APP).json["data"]["server_token"]
    flow.wait(2)
    assert flow.init("server_token_app", server_token=sct)["code"] == 0
    flow.wait(3)
    assert flow.init("server_token_app", server_token=sct)["data"]["error"] == "server_token_exhausted"
    timeline = explain(client, sct)["timeline"]
    assert [(s["stage"], s["since_previous_s"], s["failing"]) for s in timeline] == [
        ("server_token_issued", None, False), ("challenge_init", 2.0, False), ("challenge_init", 3.0, True)]
    assert timeline[-1]["outcome"] == "rejected server_token_exhausted"

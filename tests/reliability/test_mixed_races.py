"""Single use under every kind of race: 200 rounds that cycle through validate, validate
against the backup endpoint, keep_token mixed with consuming validates, concurrent solves of
one challenge and concurrent challenge inits with one limited server token — across 4
gunicorn workers on SQLite and across 2 replicas (2 workers each) on one real Redis."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.reliability.racing import DEMO, fire
from tests.support.redis import RedisServer
from tests.support.servers import running_emulator

pytestmark = [pytest.mark.integration, pytest.mark.reliability]
ROUNDS, N, SCT_USES = 200, 16, 3
SCT = {"X-App-Key": "server_token_app", "X-App-Secret": "server_token_secret"}
ORIGIN = {"Origin": "http://127.0.0.1:5173"}
PAGE = "http://127.0.0.1:5173/signup.html"


def mint(url: str) -> str:
    r = requests.post(url + "/_emulator/pass-tokens", json={"app_key": "demo_app", "action": "login"}, timeout=10)
    r.raise_for_status()
    return r.json()["pass_token"]


def valid(answer: dict) -> bool:
    return answer["data"].get("valid") is True


def validates(urls, pool) -> None:
    answers = fire(urls, [("/v1/validate", {"pass_token": mint(urls[0])}, DEMO)] * N, pool)
    assert sum(map(valid, answers)) == 1 and {a["data"].get("error") for a in answers} == {None, "token_consumed"}


def backup_validates(urls, pool) -> None:
    token = {"pass_token": mint(urls[0])}
    answers = fire(urls, [("/v1/validate" if i % 2 else "/api/validate", token, DEMO) for i in range(N)], pool)
    assert sum(map(valid, answers)) == 1


def keep_token_mix(urls, pool) -> None:
    token = mint(urls[0])
    calls = [("/v1/validate", {"pass_token": token, "keep_token": i % 2 == 0}, DEMO) for i in range(N)]
    answers = fire(urls, calls, pool)
    consuming = [a for i, a in enumerate(answers) if i % 2]
    assert sum(map(valid, consuming)) == 1
    assert all(valid(a) or a["data"]["error"] == "token_consumed" for a in answers)
    after = requests.post(urls[-1] + "/v1/validate", json={"pass_token": token, "keep_token": True}, headers=DEMO,
                          timeout=10).json()
    assert after["data"]["error"] == "token_consumed"


def solves(urls, pool) -> None:
    init = requests.post(urls[0] + "/v1/challenge/init", json={"app_key": "demo_app", "action": "login",
                                                                "referer": PAGE}, headers=ORIGIN, timeout=10).json()
    body = {"challenge_id": init["data"]["challenge_id"]}
    answers = fire(urls, [("/v1/challenge/solve", body, ORIGIN)] * N, pool)
    winners = [a for a in answers if a["code"] == 0]
    assert len(winners) == 1 and all(a["data"]["error"] == "challenge_expired" for a in answers if a["code"] != 0)
    token = winners[0]["data"]["pass_token"]
    assert requests.post(urls[-1] + "/v1/validate", json={"pass_token": token}, headers=DEMO,
                         timeout=10).json()["data"]["valid"] is True


def server_token_inits(urls, pool) -> None:
    issued = requests.post(urls[0] + "/v1/server/challenge/issue", json={"action": "login", "max_uses": SCT_USES},
                           headers=SCT, timeout=10).json()
    body = {"app_key": "server_token_app", "action": "login", "referer": PAGE,
            "server_token": issued["data"]["server_token"]}
    answers = fire(urls, [("/v1/challenge/init", body, ORIGIN)] * N, pool)
    assert sum(a["code"] == 0 for a in answers) == SCT_USES
    assert {a["data"].get("error") for a in answers if a["code"] != 0} == {"server_token_exhausted"}


KINDS = (validates, backup_validates, keep_token_mix, solves, server_token_inits)


def run_rounds(urls: list[str]) -> set[int]:
    with ThreadPoolExecutor(N) as pool:
        for round_ in range(ROUNDS):
            kind = KINDS[round_ % len(KINDS)]
            try:
                kind(urls, pool)
            except AssertionError as exc:
                raise AssertionError(f"round {round_} ({kind.__name__}): {exc}") from None
    pids: set[int] = set()
    for url in urls:
        rows = requests.get(url + "/_emulator/requests", params={"limit": 500}, timeout=10).json()["requests"]
        pids |= {r["worker_pid"] for r in rows if r.get("worker_pid")}
    return pids


def test_two_hundred_mixed_rounds_on_four_sqlite_workers(tmp_path):
    with running_emulator("--workers", "4", "--threads", "8", "--store", f"sqlite:///{tmp_path / 'm.db'}") as emu:
        pids = run_rounds([emu.url])
    assert len(pids) >= 2, f"every answer came from one worker ({pids})"


def test_two_hundred_mixed_rounds_on_two_redis_replicas(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    try:
        url = server.url(4)
        with running_emulator("--workers", "2", "--threads", "8", "--store", url) as a, \
                running_emulator("--workers", "2", "--threads", "8", "--store", url) as b:
            pids = run_rounds([a.url, b.url])
    finally:
        server.stop()
    assert len(pids) >= 3, f"answers came from {sorted(pids)} only"

"""Single use is absolute (docs/compatibility.md §11): of 32 concurrent validates of one token, exactly one
succeeds — across 4 gunicorn workers on SQLite, and across 2 replicas sharing one Redis.

Twenty rounds each, every request on its own pre-connected socket; the journal proves the
answers really came from several processes, so a pass is not a single-worker accident."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.reliability.racing import race, successes
from tests.support.redis import RedisServer
from tests.support.servers import running_emulator

pytestmark = pytest.mark.integration
ROUNDS, CONCURRENT = 20, 32


def worker_pids(url: str, count: int) -> set[int]:
    rows = requests.get(url + "/_emulator/requests", params={"endpoint": "validate", "limit": str(count)},
                        timeout=10).json()["requests"]
    return {row["worker_pid"] for row in rows if row.get("worker_pid")}


def assert_exactly_one_winner_per_round(urls: list[str], mint) -> set[int]:
    pids: set[int] = set()
    with ThreadPoolExecutor(CONCURRENT) as pool:
        for round_ in range(ROUNDS):
            answers = race(urls, mint(), CONCURRENT, pool)
            wins = successes(answers)
            assert wins == 1, f"round {round_}: {wins} of {CONCURRENT} concurrent validates succeeded"
            losers = [a["data"].get("error") for a in answers if a["data"].get("valid") is not True]
            assert set(losers) == {"token_consumed"}, f"round {round_}: {losers}"
            for url in urls:
                pids |= worker_pids(url, CONCURRENT)
    return pids


def test_sqlite_four_workers_twenty_rounds_of_32_give_one_success_each(tmp_path):
    db = tmp_path / "race.db"
    with running_emulator("--workers", "4", "--threads", "16", "--store", f"sqlite:///{db}") as emu:
        pids = assert_exactly_one_winner_per_round([emu.url], emu.mint)
    assert len(pids) >= 2, f"every answer came from one worker ({pids}): the race never crossed processes"


def test_redis_two_replicas_twenty_rounds_of_32_give_one_success_each(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    try:
        url = server.url(5)
        with running_emulator("--workers", "2", "--threads", "16", "--store", url) as a, \
                running_emulator("--workers", "2", "--threads", "16", "--store", url) as b:
            pids = assert_exactly_one_winner_per_round([a.url, b.url], a.mint)
    finally:
        server.stop()
    assert len(pids) >= 3, f"answers came from {sorted(pids)} only: the race never crossed replicas and workers"

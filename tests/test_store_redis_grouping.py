"""The Redis store's hot path groups concurrent calls of one process into one pipeline (issue 11),
without giving up what each call promised: counted in Redis' own statistics, never timed.

The gevent cases run in a child process with gevent's monkey patching, as in a `serve` worker."""

from __future__ import annotations

import pytest
import redis

from emulator.errors import StoreUnavailable
from emulator.store import open_store
from emulator.store.base import JournalQuery
from tests.support.scripts import run_json_script

GREENLETS = 40

# argv: redis url, greenlets. Prints the answers and how many times this process sent Redis
# anything meanwhile (every redis-py connection sends through send_packed_command).
WAVE = """
from gevent import monkey
monkey.patch_all()
import json, sys
import gevent, redis
from emulator.store import open_store

url, n = sys.argv[1], int(sys.argv[2])
store = open_store(url)
store.consume("warm-up", scope="", expires_at=2e9, record={})  # the connection is open and
store.journal_append({}, capacity=1000)  # Redis knows the scripts before counting
sends = []
send = redis.Connection.send_packed_command
redis.Connection.send_packed_command = lambda conn, *a, **k: sends.append(1) or send(conn, *a, **k)

def request(i):
    won = store.consume(f"t{i}", scope="app", expires_at=2e9, record={"i": i})
    return won, store.journal_append({"app_key": "app", "i": i}, capacity=1000)

answers = [g.get() for g in gevent.joinall([gevent.spawn(request, i) for i in range(n)], raise_error=True)]
print(json.dumps({"answers": answers, "round_trips": len(sends)}))
"""


def run_wave(url: str, n: int) -> dict:
    return run_json_script(WAVE, url, str(n))


def test_a_wave_of_greenlets_shares_one_round_trip_per_step(redis_url):
    """40 concurrent validates' consumes and journal entries: 2 round trips, not 80."""
    wave = run_wave(redis_url, GREENLETS)
    assert wave["round_trips"] == 2, wave["round_trips"]
    assert [won for won, _ in wave["answers"]] == [None] * GREENLETS  # each consumed its own token
    assert sorted(entry_id for _, entry_id in wave["answers"]) == list(range(2, GREENLETS + 2))


def test_every_grouped_call_is_stored_as_if_sent_alone(redis_url):
    run_wave(redis_url, GREENLETS)
    store = open_store(redis_url)
    try:
        entries = store.journal_query(JournalQuery(app_key="app", limit=1000))
        assert sorted(e["i"] for e in entries) == list(range(GREENLETS))
        assert all(store.consumed(f"t{i}") == {"i": i} for i in range(GREENLETS))
        assert store.consume("t7", scope="app", expires_at=2e9, record={}) == {"i": 7}
    finally:
        store.close()


@pytest.fixture
def store(redis_url):
    s = open_store(redis_url)
    yield s
    s.close()


def test_scripts_flushed_from_redis_are_loaded_again(store, redis_url):
    store.journal_append({"n": 1}, capacity=10)
    redis.Redis.from_url(redis_url).script_flush()
    assert store.consume("t", scope="", expires_at=2e9, record={}) is None
    assert store.journal_append({"n": 2}, capacity=10) == 2


def test_a_command_redis_refuses_is_store_unavailable_and_the_others_still_work(store, redis_url):
    """Redis out of memory refuses the writes (clean StoreUnavailable), still answers reads, and
    the store resumes when it has room again."""
    admin = redis.Redis.from_url(redis_url)
    store.set("k", "v")
    store.ping()  # as serve does at start: the data's generation is read (written, on a fresh database)
    admin.config_set("maxmemory", 1)
    try:
        with pytest.raises(StoreUnavailable, match="OutOfMemoryError"):
            store.consume("t", scope="", expires_at=2e9, record={})
        with pytest.raises(StoreUnavailable, match="OutOfMemoryError"):
            store.journal_append({"n": 1}, capacity=10)
        assert store.get_many(("k", "missing")) == {"k": "v", "missing": None}
    finally:
        admin.config_set("maxmemory", 0)
    assert store.consume("t", scope="", expires_at=2e9, record={}) is None
    assert store.journal_append({"n": 1}, capacity=10) == 1


def test_non_ascii_values_travel_intact(store):
    """The pipeline packs commands itself: lengths are in bytes, not characters."""
    assert store.consume("tök€n-✓", scope="äpp", expires_at=2e9, record={"who": "Zoë 🦊"}) is None
    assert store.consume("tök€n-✓", scope="äpp", expires_at=2e9, record={}) == {"who": "Zoë 🦊"}
    entry_id = store.journal_append({"app_key": "äpp", "note": "naïve ☃"}, capacity=10)
    assert store.journal_query(JournalQuery(app_key="äpp")) == [{"app_key": "äpp", "note": "naïve ☃", "id": entry_id}]

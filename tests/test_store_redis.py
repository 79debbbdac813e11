"""What only the Redis store has to prove (the shared contract is in test_store.py): outages
become StoreUnavailable and heal by themselves, connections survive fork, key prefixes isolate,
a retried consume is not mistaken for a lost race, and passwords never show."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import pytest
import redis

from emulator.errors import StoreUnavailable
from emulator.store import open_store
from emulator.store.redis import RedisStore
from tests.support.redis import RedisServer


@pytest.fixture
def store(redis_url):
    s = open_store(redis_url)
    yield s
    s.close()


def test_open_store_routes_redis_urls(store):
    assert isinstance(store, RedisStore)


def test_an_outage_is_store_unavailable_and_the_same_store_resumes_after_it(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    s = open_store(server.url(0))
    try:
        assert s.consume("kept", scope="a", expires_at=2e9, record={"n": 1}) is None
        server.stop()
        with pytest.raises(StoreUnavailable, match=rf"redis redis://127\.0\.0\.1:{server.port}/0: .*Connection"):
            s.ping()
        with pytest.raises(StoreUnavailable):
            s.consume("new", scope="a", expires_at=2e9, record={})
        server.start()
        s.ping()
        assert s.consumed("kept") == {"n": 1}  # AOF kept it across the restart
        assert s.consumed("new") is None  # the failed call consumed nothing
    finally:
        s.close()
        server.stop()


def test_a_hung_redis_fails_within_the_socket_timeout_not_forever(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    s = open_store(server.url(0))
    try:
        s.ping()
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="Timeout"):
                s.get("anything")
            assert time.monotonic() - started < 5  # one 2 s socket timeout, no retries on timeouts
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        s.ping()
    finally:
        s.close()
        server.stop()


def _child_reads(store: RedisStore, queue) -> None:
    queue.put((store.consumed("parent-token"), store.consume("child-token", scope="", expires_at=2e9, record={})))


def test_a_forked_child_opens_its_own_connection(store):
    store.consume("parent-token", scope="", expires_at=2e9, record={"who": "parent"})
    parent_client = store._redis()
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_reads, args=(store, queue))
    child.start()
    assert queue.get(timeout=30) == ({"who": "parent"}, None)
    child.join(10)
    assert store._redis() is parent_client  # the parent's client is untouched
    assert store.consumed("child-token") == {}


def test_key_prefixes_isolate_two_emulator_groups_on_one_database(redis_url):
    first, second = open_store(redis_url + "?prefix=ci-job-1"), open_store(redis_url + "?prefix=ci-job-2")
    try:
        assert first.consume("t", scope="", expires_at=2e9, record={}) is None
        assert second.consume("t", scope="", expires_at=2e9, record={}) is None
        first.reset()
        assert first.consumed("t") is None and second.consumed("t") == {}
    finally:
        first.close()
        second.close()


def test_a_retried_consume_still_knows_it_won(store, monkeypatch):
    """If a reply is lost and the script re-sent, the stored nonce is ours: still a win."""
    monkeypatch.setattr(store, "_nonce", lambda: "same-call")
    assert store.consume("t", scope="", expires_at=2e9, record={"n": 1}) is None
    assert store.consume("t", scope="", expires_at=2e9, record={"n": 1}) is None
    monkeypatch.undo()
    assert store.consume("t", scope="", expires_at=2e9, record={"n": 2}) == {"n": 1}


def test_the_shown_url_never_carries_the_password():
    s = RedisStore("redis://user:s3cret@127.0.0.1:1/0")
    assert s.url == "redis://user:***@127.0.0.1:1/0"
    assert "s3cret" not in repr(s.url)


def test_an_unreachable_redis_names_the_url_without_the_password():
    s = RedisStore("redis://:hunter2@127.0.0.1:1/0")
    with pytest.raises(StoreUnavailable) as caught:
        s.ping()
    assert "hunter2" not in str(caught.value) and "127.0.0.1:1" in str(caught.value)


def test_a_scoped_reset_keeps_other_apps_counters_and_expiry_index(store):
    store.incr("a1", scope="app_a", expires_at=100.0)
    store.incr("b1", scope="app_b", expires_at=100.0)
    store.reset("app_a")
    assert store.counter("a1") == 0 and store.counter("b1") == 1
    assert store.purge(200.0) == 1  # only b1 was still indexed
    assert store.stats()["counters"] == 0


def test_serve_with_an_unreachable_redis_fails_fast_with_one_clear_line():
    from click.testing import CliRunner

    from emulator.cli import main

    result = CliRunner().invoke(main, ["serve", "--store", "redis://127.0.0.1:1/0", "--port", "0"])
    assert result.exit_code == 2
    assert "redis redis://127.0.0.1:1/0: ConnectionError" in result.output
    assert "Traceback" not in result.output


def test_replies_are_parsed_by_hiredis_as_the_redis_extra_installs_it(store):
    """redis-py's C reply parser (the `redis` extra pulls in hiredis): with the pure-Python
    parser a Redis validate costs about 4 % more instructions (45 000 of 1 070 000, callgrind)."""
    assert type(store._own_connection()._parser).__name__ == "_HiredisParser"  # the hot path's pipeline


def test_after_redis_lost_its_data_no_token_is_accepted_until_the_emulator_restarts(redis_url):
    """FLUSHALL, or a restart without persistence, forgets which tokens were used: accepting on
    would accept a used token twice. Every call that could accept, and health, refuse instead; a
    store opened afterwards (the emulator restarted) starts over."""
    first, replica = open_store(redis_url), open_store(redis_url)
    try:
        assert first.consume("used", scope="a", expires_at=2e9, record={"n": 1}) is None
        assert replica.consume("used", scope="a", expires_at=2e9, record={"n": 2}) == {"n": 1}
        client = redis.Redis.from_url(redis_url)
        client.flushall()
        client.close()
        for store in (first, replica):
            with pytest.raises(StoreUnavailable, match="data in Redis is gone"):
                store.consume("used", scope="a", expires_at=2e9, record={"n": 3})
            with pytest.raises(StoreUnavailable, match="data in Redis is gone"):
                store.use("sct", scope="a", expires_at=2e9)
            with pytest.raises(StoreUnavailable, match="data in Redis is gone"):
                store.get_many(("clock_offset",))
            with pytest.raises(StoreUnavailable, match="data in Redis is gone"):
                store.ping()
        restarted = open_store(redis_url)
        try:
            restarted.ping()
            assert restarted.consume("new", scope="a", expires_at=2e9, record={}) is None
        finally:
            restarted.close()
        with pytest.raises(StoreUnavailable, match="data in Redis is gone"):  # still not the data it knew
            first.consume("new2", scope="a", expires_at=2e9, record={})
    finally:
        first.close()
        replica.close()

"""One contract, every backend (the `limits` pattern): atomic consume, counters, journal, reset, purge."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator

import pytest

from emulator.store import open_store
from emulator.store.base import Expired, JournalQuery, Store

BACKENDS = ["memory", "sqlite", "redis"]


def store_url(backend: str, tmp_path) -> str:
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'contract.db'}"
    raise ValueError(backend)


@pytest.fixture(params=BACKENDS)
def store_backend(request, tmp_path):
    if request.param == "redis":  # a real redis-server, emptied for this test
        return request.param, request.getfixturevalue("redis_url")
    return request.param, store_url(request.param, tmp_path)


@pytest.fixture
def store(store_backend) -> Iterator[Store]:
    s = open_store(store_backend[1])
    yield s
    s.close()


class TestStoreContract:
    def test_set_if_absent_keeps_the_first_value(self, store):
        assert store.set_if_absent("k", "first") == "first"
        assert store.set_if_absent("k", "second") == "first"
        assert store.get("k") == "first"

    def test_kv_set_get_delete(self, store):
        store.set("k", "v")
        assert store.get("k") == "v"
        store.delete("k")
        assert store.get("k") is None

    def test_incr_float_adds_up(self, store):
        assert store.incr_float("off", 1.5) == 1.5
        assert store.incr_float("off", -0.5) == 1.0
        assert float(store.get("off")) == 1.0

    def test_counter_counts(self, store):
        assert [store.incr("c") for _ in range(3)] == [1, 2, 3]
        assert store.incr("c", 5) == 8
        assert store.counter("c") == 8
        assert store.counter("missing") == 0

    def test_consume_once_then_report_the_first_record(self, store):
        assert store.consume("t1", scope="a", expires_at=2e9, record={"request_id": 7}) is None
        assert store.consume("t1", scope="a", expires_at=2e9, record={"request_id": 8}) == {"request_id": 7}
        assert store.consumed("t1") == {"request_id": 7}
        assert store.consumed("t2") is None

    def test_scoped_reset_leaves_other_apps(self, store):
        store.consume("t-a", scope="app_a", expires_at=2e9, record={})
        store.consume("t-b", scope="app_b", expires_at=2e9, record={})
        store.incr("ca", scope="app_a")
        store.incr("global")
        assert store.journal_append({"app_key": "app_a"}, capacity=10) == 1
        assert store.journal_append({"app_key": "app_b"}, capacity=10) == 2
        store.reset("app_a")
        assert store.consumed("t-a") is None and store.consumed("t-b") == {}
        assert store.counter("ca") == 0 and store.counter("global") == 1
        assert [e["id"] for e in store.journal_query(JournalQuery())] == [2]
        store.reset()
        assert store.consumed("t-b") is None and store.counter("global") == 0
        assert store.journal_query(JournalQuery()) == []

    def test_a_scoped_reset_that_keeps_uses_forgets_only_counters_and_journal(self, store):
        """What removing a runtime app does: its single-use records stay until they expire."""
        store.consume("t-a", scope="app_a", expires_at=2e9, record={"n": 1})
        assert store.use("sct-a", scope="app_a", expires_at=2e9) == 1
        store.incr("ca", scope="app_a")
        store.journal_append({"app_key": "app_a"}, capacity=10)
        store.reset("app_a", keep_uses=True)
        assert store.consumed("t-a") == {"n": 1} and store.uses("sct-a") == 1
        assert store.consume("t-a", scope="app_a", expires_at=2e9, record={"n": 2}) == {"n": 1}
        assert store.counter("ca") == 0 and store.journal_query(JournalQuery()) == []

    def test_reset_keeps_kv(self, store):
        store.set("signing_secret", "s")
        store.reset()
        assert store.get("signing_secret") == "s"

    def test_purge_drops_only_expired_rows(self, store):
        store.consume("old", scope="", expires_at=100.0, record={})
        store.consume("new", scope="", expires_at=300.0, record={})
        store.incr("old-counter", expires_at=100.0)
        store.incr("forever")
        assert store.purge(200.0) == 2
        assert store.consumed("old") is None and store.consumed("new") == {}
        assert store.counter("old-counter") == 0 and store.counter("forever") == 1

    def test_journal_is_bounded_and_filterable(self, store):
        for i in range(1, 151):
            assert store.journal_append({"endpoint": "validate" if i % 2 else "issue", "app_key": "a",
                                         "token_fp": f"fp{i % 3}", "request_key": f"k{i}"}, capacity=100) == i
        everything = store.journal_query(JournalQuery(limit=1000))
        assert [e["id"] for e in everything] == list(range(51, 151))  # exactly the newest `capacity`
        assert store.stats()["journal"] == 100 and store.journal_latest_id() == 150
        assert [e["id"] for e in store.journal_query(JournalQuery(after_id=145, limit=10))] == [146, 147, 148, 149, 150]
        assert all(e["endpoint"] == "issue" for e in store.journal_query(JournalQuery(endpoint="issue")))
        fp0 = store.journal_query(JournalQuery(after_id=140, token_fp="fp0"))
        assert [e["id"] for e in fp0] == [141, 144, 147, 150]
        assert [e["id"] for e in store.journal_query(JournalQuery(limit=2))] == [149, 150]
        assert [e["id"] for e in store.journal_query(JournalQuery(request_key="k140"))] == [140]

    def test_journal_ids_grow_after_a_scoped_reset_and_restart_after_a_full_one(self, store):
        store.journal_append({"app_key": "a"}, capacity=10)
        store.journal_append({"app_key": "b"}, capacity=10)
        store.reset("b")  # the newest entry goes, its number is never handed out again
        assert store.journal_append({"app_key": "a"}, capacity=10) == 3
        store.reset()
        assert store.journal_append({"app_key": "a"}, capacity=10) == 1

    def test_concurrent_appends_get_distinct_consecutive_ids(self, store):
        from concurrent.futures import ThreadPoolExecutor

        def append(n):
            return store.journal_append({"request_key": f"k{n}", "endpoint": "validate"}, capacity=10_000)

        with ThreadPoolExecutor(32) as pool:
            ids = list(pool.map(append, range(640)))
        assert sorted(ids) == list(range(1, 641))
        stored = {e["request_key"]: e["id"] for e in store.journal_query(JournalQuery(limit=1000))}
        assert stored == {f"k{n}": i for n, i in enumerate(ids)}

    def test_set_many_writes_and_deletes_together(self, store):
        store.set("gone", "x")
        store.set_many({"a": "1", "b": "2", "gone": None})
        assert (store.get("a"), store.get("b"), store.get("gone")) == ("1", "2", None)

    def test_get_many_reads_present_and_absent_keys_in_the_order_asked(self, store):
        store.set_many({"a": "1", "b": "2"})
        assert store.get_many(("b", "missing", "a")) == {"b": "2", "missing": None, "a": "1"}
        assert list(store.get_many(("b", "missing", "a"))) == ["b", "missing", "a"]

    def test_uses_are_counted_scoped_and_purged(self, store):
        assert [store.use("u", scope="app", expires_at=300.0) for _ in range(3)] == [1, 2, 3]
        assert store.uses("u") == 3 and store.uses("other") == 0
        store.reset("app")
        assert store.uses("u") == 0
        store.use("u", scope="app", expires_at=300.0)
        assert store.purge(400.0) == 1 and store.uses("u") == 0

    def test_purge_raises_a_horizon_that_refuses_every_purged_expiry(self, store):
        assert store.consume("old", scope="", expires_at=100.0, record={"first": True}) is None
        store.use("sct-old", scope="", expires_at=150.0)
        store.consume("live", scope="", expires_at=500.0, record={})
        store.incr("window", expires_at=190.0)  # plain counters raise no horizon
        assert store.purge(200.0) == 3
        assert store.horizon() == 150.0
        for expiry in (100.0, 150.0):  # whatever clock the caller has, these never count again
            assert store.consume("old", scope="", expires_at=expiry, record={}) == Expired(150.0)
            assert store.consumed("old", expires_at=expiry) == Expired(150.0)
            assert store.use("sct-old", scope="", expires_at=expiry) == Expired(150.0)
        assert store.consumed("never-used", expires_at=160.0) is None  # after the horizon: untouched
        assert store.consume("fresh", scope="", expires_at=150.5, record={}) is None
        assert store.consumed("live", expires_at=500.0) == {}
        store.purge(120.0)  # a purge with an earlier clock never lowers the horizon
        store.reset("some_app")  # nor does a scoped reset
        assert store.horizon() == 150.0
        store.reset()  # a full reset forgets every use, so it drops the horizon too
        assert store.horizon() == float("-inf")
        assert store.consume("old", scope="", expires_at=100.0, record={}) is None

    def test_ping(self, store):
        store.ping()


def _race(url: str, token_id: str, start, results) -> None:
    store = open_store(url)
    start.wait()
    record = {"pid": multiprocessing.current_process().pid}
    results.put(store.consume(token_id, scope="", expires_at=2e9, record=record) is None)


@pytest.mark.integration
@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "memory"])  # memory:// is one process by design
def test_consume_race_across_processes_has_one_winner(backend, tmp_path, request):
    url = store_url(backend, tmp_path) if backend != "redis" else request.getfixturevalue("redis_url")
    ctx = multiprocessing.get_context("fork")
    for round_ in range(5):
        start, results = ctx.Barrier(8), ctx.Queue()
        procs = [ctx.Process(target=_race, args=(url, f"race-{round_}", start, results)) for _ in range(8)]
        for p in procs:
            p.start()
        wins = [results.get(timeout=30) for _ in procs]
        for p in procs:
            p.join(10)
        assert wins.count(True) == 1


def test_closing_a_sqlite_store_releases_its_files(tmp_path):
    """No descriptor outlives close() (the suite turns ResourceWarning into an error)."""
    import gc
    import warnings

    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    store.set("k", "v")
    store.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        del store
        gc.collect()

"""SQLite's group commit (issue 11): concurrent consumes of one process share a transaction, and
concurrent journal entries one hold of the ring's lock (tests/test_journal_ring.py has the ring).

Counted, never timed: a gevent worker's wave of greenlets, and a thread pool, each make far
fewer write transactions (and ring locks) than writes, and every write still gets its own
correct answer."""

from __future__ import annotations

import textwrap
from concurrent.futures import ThreadPoolExecutor

from emulator.store.sqlite import SQLiteStore
from tests.support.scripts import run_json_script

WRITERS = 32


def run_wave(script: str, tmp_path) -> dict:
    """Run a wave script in a fresh interpreter on a fresh database; its printed JSON."""
    db = tmp_path / "s.db"
    SQLiteStore(f"sqlite:///{db}", str(db)).close()
    return run_json_script(script, str(db))

# Runs in a fresh interpreter: gevent must patch before anything imports threading's primitives.
GEVENT_WAVE = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import json, sys
    import gevent
    from emulator.store.sqlite import SQLiteStore

    store = SQLiteStore("sqlite:///" + sys.argv[1], sys.argv[1])
    batches = []
    write_batch = store._write_batch
    store._write_batch = lambda batch: (batches.append(len(batch)), write_batch(batch))[1]

    def request(n):
        won = store.consume(f"t{n % {writers_half}}", scope="a", expires_at=1e12, record={"n": n})
        return won is None, store.journal_append({"request_key": f"k{n}"}, capacity=1000)

    results = [g.get() for g in [gevent.spawn(request, n) for n in range({writers})]]
    print(json.dumps({"batches": batches, "results": results}))
""").replace("{writers_half}", str(WRITERS // 2)).replace("{writers}", str(WRITERS))


def test_a_gevent_wave_of_requests_shares_transactions_and_every_write_gets_its_answer(tmp_path):
    out = run_wave(GEVENT_WAVE, tmp_path)
    assert sum(out["batches"]) == WRITERS  # every consume was written; no entry took a transaction
    assert len(out["batches"]) <= 2, out["batches"]  # a wave, not one transaction per write
    won = [won for won, _ in out["results"]]
    assert won.count(True) == WRITERS // 2  # each of the 16 tokens consumed exactly once
    assert sorted(number for _, number in out["results"]) == list(range(1, WRITERS + 1))


def test_threads_share_transactions_too(tmp_path):
    store = SQLiteStore(f"sqlite:///{tmp_path / 's.db'}", str(tmp_path / "s.db"))
    batches: list[int] = []
    write_batch = store._write_batch

    def counted(batch):
        batches.append(len(batch))
        write_batch(batch)

    store._write_batch = counted  # type: ignore[method-assign]
    with ThreadPoolExecutor(WRITERS) as pool:
        won = list(pool.map(lambda n: store.consume(f"t{n}", scope="a", expires_at=1e12, record={}) is None,
                            range(WRITERS * 20)))
    assert all(won) and sum(batches) == WRITERS * 20
    assert len(batches) < WRITERS * 20  # some writes shared a transaction
    store.close()


INTERRUPTED_WAVE = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import json, sys
    import gevent
    from emulator.errors import StoreUnavailable
    from emulator.store.sqlite import SQLiteStore

    store = SQLiteStore("sqlite:///" + sys.argv[1], sys.argv[1])
    write_batch, calls = store._write_batch, []

    def first_write_interrupted(batch):
        calls.append(len(batch))
        if len(calls) == 1:
            raise RuntimeError("interrupted")  # what a timeout in the leader's own request looks like
        write_batch(batch)

    store._write_batch = first_write_interrupted

    def request(n):
        try:
            return store.consume(f"t{n}", scope="a", expires_at=1e12, record={"n": n})
        except StoreUnavailable:
            return "unavailable"
        except RuntimeError:
            return "leader"

    first = [g.get() for g in [gevent.spawn(request, n) for n in range(8)]]
    after = [g.get() for g in [gevent.spawn(request, n) for n in range(8, 16)]]
    print(json.dumps({"calls": calls, "first": first, "after": after}))
""")


def test_an_interrupted_group_write_fails_its_own_requests_cleanly_and_the_next_wave_writes(tmp_path):
    """Never a silent None: a consume would read it as "not won", and its request would be refused."""
    out = run_wave(INTERRUPTED_WAVE, tmp_path)
    assert out["calls"][0] == 8  # the whole first wave was in the interrupted write
    assert sorted(out["first"], key=str) == ["leader"] + ["unavailable"] * 7
    assert out["after"] == [None] * 8  # each consumed by its own call: the interrupted write stored nothing


# Every greenlet of a wave records its request's journal entry; the ring's lock is counted.
JOURNAL_WAVE = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import fcntl, json, sys
    import gevent
    from emulator.store.base import JournalQuery
    from emulator.store.sqlite import SQLiteStore

    store = SQLiteStore("sqlite:///" + sys.argv[1], sys.argv[1])
    store.journal_append({"request_key": "warm"}, capacity=1000)  # maps the ring, adopts nothing
    other = SQLiteStore("sqlite:///" + sys.argv[1], sys.argv[1])  # what another worker reads
    other.journal_query(JournalQuery(limit=1))  # its first touch takes the lock too: not counted
    real_flock, exclusive = fcntl.flock, []
    def counted(fd, how):
        if how == fcntl.LOCK_EX:
            exclusive.append(fd)
        return real_flock(fd, how)
    fcntl.flock = counted

    def request(n):
        number = store.journal_append({"request_key": f"k{n}", "app_key": "a"}, capacity=1000)
        seen = other.journal_query(JournalQuery(request_key=f"k{n}"))  # before any other greenlet runs
        return number, [row["id"] for row in seen]

    results = [g.get() for g in [gevent.spawn(request, n) for n in range({writers})]]
    fcntl.flock = real_flock
    print(json.dumps({"locks": len(exclusive), "results": results}))
""").replace("{writers}", str(WRITERS))


def test_a_gevent_wave_of_journal_entries_takes_the_ring_lock_once_and_each_is_readable_on_return(tmp_path):
    """Each entry used to take the ring's lock on its own: 4 syscalls per request, about 3 us each
    in a loaded worker. A wave now shares one lock, and every call still returns its own id only
    once its entry is readable by another store (the journal's bound: before the answer leaves)."""
    out = run_wave(JOURNAL_WAVE, tmp_path)
    numbers = [number for number, _ in out["results"]]
    assert sorted(numbers) == list(range(2, WRITERS + 2))  # each its own id, none lost or repeated
    assert all(seen == [number] for number, seen in out["results"])
    assert out["locks"] <= 2, out["locks"]  # a wave, not one lock per entry


FAILING_JOURNAL_WAVE = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import json, os, sys
    import gevent
    from emulator.errors import StoreUnavailable
    from emulator.store.base import JournalQuery
    from emulator.store.sqlite import SQLiteStore

    store = SQLiteStore("sqlite:///" + sys.argv[1], sys.argv[1])
    store.journal_append({"request_key": "warm"}, capacity=1000)
    real_pwrite, writes = os.pwrite, []
    def full_disk_at_the_third(fd, data, at):
        writes.append(at)
        if len(writes) == 3:
            raise OSError(28, "No space left on device")
        return real_pwrite(fd, data, at)
    os.pwrite = full_disk_at_the_third

    def request(n):
        try:
            return store.journal_append({"request_key": f"k{n}"}, capacity=1000)
        except StoreUnavailable as exc:
            return str(exc)

    first = [g.get() for g in [gevent.spawn(request, n) for n in range(6)]]
    after = [g.get() for g in [gevent.spawn(request, n) for n in range(6, 9)]]
    keys = [row["request_key"] for row in store.journal_query(JournalQuery(limit=100, after_id=0))]
    print(json.dumps({"first": first, "after": after, "keys": keys}))
""")


def test_a_journal_wave_the_disk_refuses_fails_every_entry_in_it_and_the_next_wave_is_written(tmp_path):
    """No entry of a failed wave is half there: the two written before the failure are never
    shown (the ring's latest id did not move), and the next wave takes their ids."""
    out = run_wave(FAILING_JOURNAL_WAVE, tmp_path)
    assert all("No space left on device" in answer for answer in out["first"]), out["first"]
    assert out["after"] == [2, 3, 4]
    assert out["keys"] == ["warm", "k6", "k7", "k8"]

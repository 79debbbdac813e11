"""SQLite's group commit (issue 11): concurrent consumes of one process share a transaction
(journal entries go to the ring, tests/test_journal_ring.py, and never wait for one).

Counted, never timed: a gevent worker's wave of greenlets, and a thread pool, each make far
fewer write transactions than writes, and every write still gets its own correct answer."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

from emulator.store.sqlite import SQLiteStore

WRITERS = 32

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
    db = tmp_path / "s.db"
    SQLiteStore(f"sqlite:///{db}", str(db)).close()
    done = subprocess.run([sys.executable, "-c", GEVENT_WAVE, str(db)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
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
    db = tmp_path / "s.db"
    SQLiteStore(f"sqlite:///{db}", str(db)).close()
    done = subprocess.run([sys.executable, "-c", INTERRUPTED_WAVE, str(db)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["calls"][0] == 8  # the whole first wave was in the interrupted write
    assert sorted(out["first"], key=str) == ["leader"] + ["unavailable"] * 7
    assert out["after"] == [None] * 8  # each consumed by its own call: the interrupted write stored nothing

"""The SQLite store's journal ring (issue 11): entries in shared memory beside the database.

What makes it cheap (no SQL per entry) and what keeps it right: ids unique and consecutive
across real processes, the newest `capacity` kept through a capacity change, entries kept
across a restart, resets, an oversized entry cut to fit, a damaged slot skipped, and the
entries an earlier version kept in the journal table adopted with their ids."""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from emulator.errors import StoreUnavailable
from emulator.store.base import JOURNAL_SEQ, JournalQuery
from emulator.store.journal_ring import HEADER, PAYLOAD, SLOT_HEAD, SLOT_SIZE
from emulator.store.sqlite import RING_SUFFIX, SQLiteStore

PROCESSES, PER_PROCESS = 4, 150


def open_db(path: Path) -> SQLiteStore:
    return SQLiteStore(f"sqlite:///{path}", str(path))


def _append_many(path: str, worker: int) -> None:
    store = open_db(Path(path))
    for n in range(PER_PROCESS):
        store.journal_append({"request_key": f"w{worker}-{n}", "app_key": "a"}, capacity=1000)
    store.close()


def test_entries_from_several_processes_get_unique_consecutive_ids(tmp_path):
    db = tmp_path / "s.db"
    open_db(db).close()
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(db), w)) for w in range(PROCESSES)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = open_db(db)
    rows = store.journal_query(JournalQuery(limit=10_000))
    assert [r["id"] for r in rows] == list(range(1, PROCESSES * PER_PROCESS + 1))
    assert sorted(r["request_key"] for r in rows) == sorted(
        f"w{w}-{n}" for w in range(PROCESSES) for n in range(PER_PROCESS))
    assert store.journal_latest_id() == PROCESSES * PER_PROCESS


def test_an_entry_is_written_without_any_sql_statement(tmp_path):
    store = open_db(tmp_path / "s.db")
    store.journal_append({"request_key": "warm"}, capacity=10)  # the first touch looks for old table rows
    statements: list[str] = []
    store._conn().set_trace_callback(statements.append)
    store.journal_append({"request_key": "k"}, capacity=10)
    assert statements == []
    assert store.journal_query(JournalQuery(request_key="k"))[0]["id"] == 2


def test_a_steady_append_costs_one_size_check_and_one_write(tmp_path, monkeypatch):
    """The request path's append, once the ring is mapped: one `lseek` to see the file still covers
    the mapping, one `pwrite`, and no `fstat` (which builds a stat object) or header read from the
    file. Round the ring more than once: every slot lands where a reader looks for it."""
    store = open_db(tmp_path / "s.db")
    store.journal_append({"request_key": "warm"}, capacity=4)  # the first append maps and lays out the file
    calls: dict[str, int] = {}
    for name in ("fstat", "lseek", "pwrite", "pread"):
        real = getattr(os, name)

        def counted(*args, _real=real, _name=name):
            calls[_name] = calls.get(_name, 0) + 1
            return _real(*args)

        monkeypatch.setattr(os, name, counted)
    ids = [store.journal_append({"request_key": f"k{n}"}, capacity=4) for n in range(10)]
    monkeypatch.undo()
    assert ids == list(range(2, 12))
    assert calls == {"lseek": 10, "pwrite": 10}
    assert [(r["id"], r["request_key"]) for r in store.journal_query(JournalQuery(limit=10))] == [
        (8, "k6"), (9, "k7"), (10, "k8"), (11, "k9")]


def test_the_newest_capacity_entries_survive_a_capacity_change_seen_by_another_store(tmp_path):
    db = tmp_path / "s.db"
    writer, reader = open_db(db), open_db(db)
    for n in range(1, 11):
        writer.journal_append({"request_key": f"k{n}"}, capacity=8)
    assert [r["request_key"] for r in reader.journal_query(JournalQuery(limit=100))] == [f"k{n}" for n in range(3, 11)]
    writer.journal_append({"request_key": "k11"}, capacity=3)  # smaller: the file is laid out again
    assert [r["id"] for r in reader.journal_query(JournalQuery(limit=100))] == [9, 10, 11]
    reader.journal_append({"request_key": "k12"}, capacity=5)  # larger again, from the other store
    assert [r["id"] for r in writer.journal_query(JournalQuery(limit=100))] == [9, 10, 11, 12]
    assert (db.parent / (db.name + RING_SUFFIX)).stat().st_size == HEADER.size + 5 * SLOT_SIZE


def test_entries_and_ids_survive_a_restart(tmp_path):
    db = tmp_path / "s.db"
    store = open_db(db)
    for n in range(5):
        store.journal_append({"request_key": f"k{n}", "reason": "é ✓"}, capacity=100)
    store.close()
    again = open_db(db)
    assert again.journal_latest_id() == 5
    assert again.journal_append({"request_key": "k5"}, capacity=100) == 6
    rows = again.journal_query(JournalQuery(limit=100))
    assert [r["id"] for r in rows] == [1, 2, 3, 4, 5, 6] and rows[0]["reason"] == "é ✓"


def test_entries_answer_with_their_keys_sorted_and_the_id_among_them(tmp_path):
    store = open_db(tmp_path / "s.db")
    store.journal_append({"zeta": 1, "alpha": 2, "ts": 1.5}, capacity=10)
    assert list(store.journal_query(JournalQuery())[0]) == ["alpha", "id", "ts", "zeta"]


def test_resets_forget_one_app_or_everything(tmp_path):
    store = open_db(tmp_path / "s.db")
    for n in range(6):
        store.journal_append({"request_key": f"k{n}", "app_key": "a" if n % 2 else "b"}, capacity=10)
    store.reset("a")
    assert [r["request_key"] for r in store.journal_query(JournalQuery())] == ["k0", "k2", "k4"]
    assert store.stats()["journal"] == 3
    store.reset()
    assert store.journal_query(JournalQuery()) == [] and store.journal_latest_id() == 0
    assert store.journal_append({"request_key": "again"}, capacity=10) == 1  # ids start again


def test_an_oversized_entry_is_cut_to_fit_and_keeps_its_id_and_core_fields(tmp_path):
    store = open_db(tmp_path / "s.db")
    store.journal_append({"request_key": "big", "reason": "r" * 20_000, "endpoint": "validate"}, capacity=10)
    huge = {f"field{n}": "x" * 400 for n in range(40)}
    store.journal_append({"request_key": "huge", "app_key": "a", **huge}, capacity=10)
    big, cut = store.journal_query(JournalQuery())
    assert big["id"] == 1 and big["truncated"] is True and big["endpoint"] == "validate"
    assert big["reason"] == "r" * 512 + "…"
    assert cut["id"] == 2 and cut["request_key"] == "huge" and cut["app_key"] == "a" and cut["truncated"] is True
    assert "field0" not in cut


def test_a_damaged_or_half_written_slot_is_skipped_never_an_error(tmp_path):
    db = tmp_path / "s.db"
    store = open_db(db)
    for n in range(1, 5):
        store.journal_append({"request_key": f"k{n}"}, capacity=10)
    store.close()
    ring = db.parent / (db.name + RING_SUFFIX)
    raw = bytearray(ring.read_bytes())
    second, third = HEADER.size + SLOT_SIZE, HEADER.size + 2 * SLOT_SIZE
    raw[second + 12:second + 20] = b"{garbage"  # the JSON of entry 2
    raw[third:third + 8] = bytes(8)  # entry 3's id: what a writer killed half-way leaves
    ring.write_bytes(bytes(raw))
    again = open_db(db)
    assert [r["request_key"] for r in again.journal_query(JournalQuery(limit=100))] == ["k1", "k4"]
    assert again.journal_append({"request_key": "k5"}, capacity=10) == 5


def test_a_filter_that_only_looks_like_a_match_does_not_hide_the_real_one(tmp_path):
    store = open_db(tmp_path / "s.db")
    store.journal_append({"request_key": "real", "app_key": "a"}, capacity=100)
    for n in range(5):  # newer entries whose nested detail carries the same text
        store.journal_append({"request_key": f"decoy{n}", "app_key": "b", "detail": {"app_key": "a"}}, capacity=100)
    assert [r["request_key"] for r in store.journal_query(JournalQuery(app_key="a", limit=1))] == ["real"]


def test_entries_an_earlier_version_kept_in_the_table_are_adopted_with_their_ids(tmp_path):
    db = tmp_path / "s.db"
    open_db(db).close()  # the schema; the ring file is made on first use
    assert not (db.parent / (db.name + RING_SUFFIX)).exists()
    with sqlite3.connect(db) as conn:  # what an earlier version left: numbered rows and the counter
        for n in (41, 42):
            conn.execute("INSERT INTO journal(id, app_key, endpoint, token_fp, token_id, entry) VALUES (?, 'a', "
                         "'validate', NULL, NULL, ?)", (n, json.dumps({"id": n, "request_key": f"old{n}"})))
        conn.execute("INSERT INTO counters(key, scope, value) VALUES (?, '', 42)", (JOURNAL_SEQ,))
    store = open_db(db)
    assert [(r["id"], r["request_key"]) for r in store.journal_query(JournalQuery())] == [(41, "old41"), (42, "old42")]
    assert store.journal_append({"request_key": "new"}, capacity=1000) == 43
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM journal").fetchone()[0] == 0


def test_an_entry_fills_at_most_one_slot(tmp_path):
    store = open_db(tmp_path / "s.db")
    for n in range(3):
        store.journal_append({"request_key": f"k{n}", "reason": "y" * (PAYLOAD + 100)}, capacity=3)
    assert [r["request_key"] for r in store.journal_query(JournalQuery())] == ["k0", "k1", "k2"]


HOLD_WRITER_LOCK = """
import fcntl, sys
with open(sys.argv[1], "a+b") as f:
    fcntl.flock(f.fileno(), fcntl.LOCK_EX)
    print("locked", flush=True)
    sys.stdin.read()
"""


def test_an_entry_never_waits_for_a_database_write(tmp_path):
    """The ring has its own lock: a long SQLite transaction in another process (which holds the
    database's writer lock) does not hold up any request's journal entry."""
    db = tmp_path / "s.db"
    store = open_db(db)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_WRITER_LOCK, str(db) + ".lock"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        done: list[int] = []
        writer = threading.Thread(target=lambda: done.append(store.journal_append({"k": 1}, capacity=10)),
                                  daemon=True)
        writer.start()
        writer.join(10)
        assert done == [1], "the journal entry waited for the database's writer lock"
    finally:
        holder.communicate("", timeout=10)


# --- what the file system can do to the ring: repaired or refused, never a crash ---------------

def ring_path(db: Path) -> Path:
    return db.parent / (db.name + RING_SUFFIX)


def test_a_foreign_or_damaged_ring_file_is_rewritten_keeping_ids_when_it_can(tmp_path):
    db = tmp_path / "s.db"
    ring_path(db).write_bytes(b"\xff" * 100)  # not ours: a fresh ring, ids from 1
    store = open_db(db)
    assert store.journal_append({"request_key": "a"}, capacity=10) == 1
    store.close()
    ring_path(db).write_bytes(HEADER.pack(b"CEJR", 1, SLOT_SIZE, 10, 7))  # ours, but its slots are gone
    store = open_db(db)
    assert store.journal_query(JournalQuery()) == []
    assert store.journal_append({"request_key": "b"}, capacity=10) == 8  # ids never go back
    store.close()
    ring_path(db).write_bytes(HEADER.pack(b"CEJR", 1, SLOT_SIZE, 0, 2**64 - 1))  # an id no ring reaches
    assert open_db(db).journal_append({"request_key": "c"}, capacity=10) == 1


TRUNCATED_UNDER_A_RUNNING_STORE = """
import os, sys
from emulator.store.sqlite import SQLiteStore
from emulator.store.base import JournalQuery
from emulator.store.journal_ring import HEADER
db = sys.argv[1]
store = SQLiteStore("sqlite:///" + db, db)
for n in range(5):
    store.journal_append({"request_key": f"k{n}"}, capacity=10)
os.truncate(db + ".requests", HEADER.size)  # a process killed while the file was laid out again
print(store.journal_append({"request_key": "after"}, capacity=10), len(store.journal_query(JournalQuery())))
os.truncate(db + ".requests", 0)  # `: > s.db.requests` under the running server
print(store.journal_append({"request_key": "again"}, capacity=10), store.journal_latest_id())
"""


def test_a_ring_file_cut_short_under_a_running_store_is_repaired_never_sigbus(tmp_path):
    done = subprocess.run([sys.executable, "-c", TRUNCATED_UNDER_A_RUNNING_STORE, str(tmp_path / "s.db")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (done.returncode, done.stderr)  # -7 would be SIGBUS
    assert done.stdout.split() == ["6", "1", "1", "1"]  # ids kept while the header was; entries lost


KILLED_MID_RELAYOUT = """
import os, sys
from emulator.store.sqlite import SQLiteStore
db = sys.argv[1]
other = SQLiteStore("sqlite:///" + db, db)
for n in range(5):
    other.journal_append({"request_key": f"k{n}"}, capacity=100)
pid = os.fork()
if pid == 0:  # lays the ring out again for capacity 3 and dies right after dropping the old slots
    real = os.ftruncate
    def dying(fd, size):
        real(fd, size)
        os._exit(9)
    os.ftruncate = dying
    SQLiteStore("sqlite:///" + db, db).journal_append({"request_key": "x"}, capacity=3)
os.waitpid(pid, 0)
print(other.journal_append({"request_key": "survivor"}, capacity=100))
"""


def test_a_process_killed_while_laying_the_ring_out_leaves_the_others_working(tmp_path):
    done = subprocess.run([sys.executable, "-c", KILLED_MID_RELAYOUT, str(tmp_path / "s.db")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (done.returncode, done.stderr)
    assert done.stdout.split() == ["6"]


FULL_DISK = """
import sys
from emulator.errors import StoreUnavailable
from emulator.store.sqlite import SQLiteStore
db = sys.argv[1] + "/s.db"
store = SQLiteStore("sqlite:///" + db, db)
try:
    for n in range(5000):
        store.journal_append({"request_key": f"k{n}", "reason": "r" * 1500}, capacity=5000)
    print("never full")
except StoreUnavailable as exc:
    print("refused:", exc)
"""


def test_a_full_disk_refuses_the_entry_instead_of_killing_the_worker(tmp_path):
    """A 1 MiB tmpfs in a private mount namespace stands in for a full disk."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = tmp_path / "full.py"
    script.write_text(FULL_DISK)
    shell = f"mount -t tmpfs -o size=1m tmpfs {mnt} && exec {sys.executable} {script} {mnt}"
    done = subprocess.run(["unshare", "-m", "sh", "-c", shell], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, (done.returncode, done.stderr)  # -7 would be SIGBUS
    assert done.stdout.startswith("refused:") and "No space left on device" in done.stdout, done.stdout


def test_hostile_text_is_stored_as_valid_json_and_never_breaks_a_scoped_reset(tmp_path):
    store = open_db(tmp_path / "s.db")
    store.journal_append({"request_key": "evil", "app_key": "é" * 3000, "action": "\U0001d11e" * 3000,
                          "token_id": "\\" * 3000, "reason": '"' * 3000}, capacity=10)
    store.journal_append({"request_key": "fine", "app_key": "demo"}, capacity=10)
    evil, fine = store.journal_query(JournalQuery())
    assert evil["truncated"] is True and evil["request_key"] == "evil" and evil["app_key"].startswith("é")
    store.reset("demo")
    assert [r["request_key"] for r in store.journal_query(JournalQuery())] == ["evil"]


def test_a_forked_child_starts_with_its_own_descriptor_and_lock_before_anything_runs(tmp_path):
    """So threads of a fresh worker racing to their first entry never share, or close, the parent's."""
    store = open_db(tmp_path / "s.db")
    store.journal_append({"request_key": "parent"}, capacity=10)
    ring = store._ring
    parent_lock = ring._thread_lock
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, repr((ring._fd, ring._map is None, ring._thread_lock is parent_lock)).encode())
        os._exit(0)
    os.close(write)
    assert os.read(read, 100) == b"(None, True, False)"
    os.close(read)
    os.waitpid(pid, 0)
    assert ring._fd is not None  # the parent's is untouched


def test_an_earlier_versions_id_counter_is_kept_even_with_few_or_no_rows(tmp_path):
    for rows, counter, expected in (((41, 42), 50, [41, 42]), ((), 42, [])):
        db = tmp_path / f"s{counter}.db"
        open_db(db).close()
        with sqlite3.connect(db) as conn:
            for n in rows:
                conn.execute("INSERT INTO journal(id, entry) VALUES (?, ?)", (n, json.dumps({"id": n})))
            conn.execute("INSERT INTO counters(key, scope, value) VALUES (?, '', ?)", (JOURNAL_SEQ, counter))
        store = open_db(db)
        assert [r["id"] for r in store.journal_query(JournalQuery())] == expected
        assert store.journal_append({"request_key": "new"}, capacity=1000) == counter + 1


def test_health_names_a_ring_file_that_was_deleted_replaced_or_made_read_only(tmp_path):
    db = tmp_path / "s.db"
    store = open_db(db)
    store.journal_append({"request_key": "a"}, capacity=10)
    store.ping()
    ring = ring_path(db)
    ring.rename(tmp_path / "moved")
    with pytest.raises(StoreUnavailable, match="deleted"):
        store.ping()
    ring.write_bytes(b"")
    with pytest.raises(StoreUnavailable, match="replaced"):
        store.ping()
    store.close()
    store = open_db(db)
    store.journal_append({"request_key": "a"}, capacity=10)
    if subprocess.run(["chattr", "+i", str(ring)], capture_output=True).returncode != 0:
        pytest.fail("chattr +i failed: this file system cannot make a file read-only for root")
    try:
        with pytest.raises(StoreUnavailable, match="read-only"):
            store.ping()
    finally:
        subprocess.run(["chattr", "-i", str(ring)], check=True)
    store.ping()


def test_a_stored_entry_is_its_own_answer_so_reading_needs_no_resorting(tmp_path):
    """Long-polls and diagnosis parse every entry they read: the slot holds the entry's id (written
    over a same-width mark under the lock), then its keys already sorted with `id` among them, then
    its values in that order; an `id` the entry carried itself is not kept."""
    db = tmp_path / "s.db"
    store = open_db(db)
    for n in range(1, 4):
        store.journal_append({"zeta": n, "alpha": "a", "id": "ignored"}, capacity=10)
    slot = ring_path(db).read_bytes()[HEADER.size + 2 * SLOT_SIZE:][:SLOT_SIZE]
    number, length = SLOT_HEAD.unpack_from(slot)
    assert number == 3
    assert json.loads(slot[SLOT_HEAD.size:SLOT_HEAD.size + length]) == [3, ["alpha", "id", "zeta"], ["a", 0, 3]]
    answer = store.journal_query(JournalQuery())[-1]
    assert answer == {"alpha": "a", "id": 3, "zeta": 3} and list(answer) == ["alpha", "id", "zeta"]


def test_entries_an_earlier_version_wrote_as_json_objects_still_read_filter_and_reset(tmp_path):
    """A ring file written before entries became arrays is read as it is after an upgrade: its
    entries answer, filter by app and are forgotten by a scoped reset like the new ones."""
    db = tmp_path / "s.db"
    store = open_db(db)
    for n in range(1, 4):
        store.journal_append({"request_key": f"k{n}"}, capacity=10)
    store.close()
    ring = ring_path(db)
    raw = bytearray(ring.read_bytes())
    for n, app in ((1, "old"), (2, "other")):  # what the earlier version wrote: key-sorted objects
        body = json.dumps({"app_key": app, "id": n, "request_key": f"old{n}"}, separators=(",", ":")).encode()
        at = HEADER.size + (n - 1) * SLOT_SIZE
        raw[at:at + SLOT_HEAD.size + len(body)] = SLOT_HEAD.pack(n, len(body)) + body
    ring.write_bytes(bytes(raw))
    again = open_db(db)
    assert [r["request_key"] for r in again.journal_query(JournalQuery())] == ["old1", "old2", "k3"]
    assert again.journal_query(JournalQuery(app_key="old")) == [{"app_key": "old", "id": 1, "request_key": "old1"}]
    again.journal_append({"request_key": "new", "app_key": "old"}, capacity=10)
    again.reset("old")
    assert [r["request_key"] for r in again.journal_query(JournalQuery())] == ["old2", "k3"]


def test_a_filter_matches_its_own_field_not_the_same_value_under_another_key(tmp_path):
    store = open_db(tmp_path / "s.db")
    store.journal_append({"request_key": "real", "app_key": "login"}, capacity=100)
    for n in range(5):  # newer entries that hold the same value in other fields
        store.journal_append({"request_key": f"decoy{n}", "app_key": "b", "action": "login"}, capacity=100)
    assert [r["request_key"] for r in store.journal_query(JournalQuery(app_key="login", limit=1))] == ["real"]
    store.reset("login")
    assert [r["request_key"] for r in store.journal_query(JournalQuery())] == [f"decoy{n}" for n in range(5)]


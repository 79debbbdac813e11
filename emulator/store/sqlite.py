"""sqlite:///path — the default store, shared by every worker of one host.

WAL mode and a busy timeout let several gunicorn workers write concurrently; every
invariant is one statement (INSERT OR IGNORE, UPSERT ... RETURNING), so it is atomic
across processes. Connections are per thread and reopened after fork."""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import sqlite3
import struct
import sys
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, NamedTuple
from urllib.parse import quote

from .. import process
from ..errors import StoreUnavailable
from .base import HORIZON_KEY, JOURNAL_SEQ, NO_HORIZON, Expired, JournalQuery, Record, Store, dump, load
from .group import Group, Slot, gevent_patched
from .journal_ring import JournalRing, encode_entry, parse

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (
    key TEXT PRIMARY KEY, scope TEXT NOT NULL, value INTEGER NOT NULL, expires_at REAL);
CREATE TABLE IF NOT EXISTS consumed (
    token_id TEXT PRIMARY KEY, scope TEXT NOT NULL, expires_at REAL NOT NULL, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS uses (
    key TEXT PRIMARY KEY, scope TEXT NOT NULL, value INTEGER NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY, app_key TEXT, endpoint TEXT, token_fp TEXT, token_id TEXT, entry TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS apps (app_key TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS consumed_expiry ON consumed(expires_at);
CREATE INDEX IF NOT EXISTS counters_expiry ON counters(expires_at);
CREATE INDEX IF NOT EXISTS uses_expiry ON uses(expires_at);
CREATE INDEX IF NOT EXISTS journal_token ON journal(token_fp);
"""
# true while `?` (an expiry) is after the purge horizon; parameters: expiry
AFTER_HORIZON = f"NOT EXISTS (SELECT 1 FROM kv WHERE key = '{HORIZON_KEY}' AND CAST(value AS REAL) >= ?)"
SINGLE_USE_TABLES = ("consumed", "uses")
RING_SUFFIX = ".requests"  # the journal's ring file beside the database (store/journal_ring.py)
LOCK_SUFFIX = ".lock"  # the writers' flock and the kv generation counter (_open_lock)
# every file a database at `path` has beside it: SQLite's WAL and shared memory, and ours
FILE_SUFFIXES = ("", "-wal", "-shm", LOCK_SUFFIX, RING_SUFFIX)
RING_ERRORS = (OSError, ValueError, OverflowError, struct.error)  # a failing or damaged ring file
KV_CACHE_SIZE = 16  # get_many key tuples kept per process (callers use a few fixed ones)
# one atomic statement: the row is inserted (rowcount 1) only if absent and after the horizon
CONSUME = ("INSERT OR IGNORE INTO consumed(token_id, scope, expires_at, record) "
           f"SELECT ?, ?, ?, ? WHERE {AFTER_HORIZON}")


class SQLiteStore(Store):
    def __init__(self, url: str, path: str) -> None:
        self.url = url
        self.path = path
        self._local = _thread_local()
        self._pid = process.pid()
        self._thread_lock: threading.RLock = threading.RLock()
        self._lock_pid = -1
        self._lock_file: IO[bytes] | None = None
        self._kv_gen: _Generation | None = None
        self._kv_cache: dict[tuple[str, ...], tuple[int, dict[str, str | None]]] = {}
        # group commit (store/group.py): a process's concurrent consumes share one transaction,
        # and its concurrent journal entries one hold of the ring's lock
        self._group = Group(lambda batch: self._write_batch(batch))
        self._journal_group = Group(lambda batch: self._append_batch(batch))
        self._inode: int | None = None
        self._ring = JournalRing(None)
        self._ring_pid = -1
        if path != ":memory:":
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnavailable(f"sqlite {path}: cannot create its directory: {exc.strerror or exc}") from None
        self._execute_script(SCHEMA)
        if path != ":memory:":
            self._inode = os.stat(path).st_ino  # from now on connections never create the file
            self._abs = os.path.abspath(path)  # a later chdir (gunicorn --chdir) must not move it
            self._uri = f"file:{quote(self._abs)}?mode=rw"
            self._ring = JournalRing(self._abs + RING_SUFFIX)

    def _target(self) -> tuple[str, bool]:
        """What connections open: once the schema exists, the file only (`mode=rw`), so a
        deleted database is an error, never a silently recreated empty one."""
        if self._inode is None:
            return self.path, False
        return self._uri, True

    # --- connections ---------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        if self._pid != process.pid():  # forked: never reuse the parent's connections
            self._local = _thread_local()
            self._pid = process.pid()
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                target, uri = self._target()
                conn = sqlite3.connect(target, timeout=10.0, isolation_level=None, check_same_thread=False, uri=uri)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA busy_timeout=10000")
                conn.execute("PRAGMA journal_size_limit=4194304")  # a big purge must not leave a 20 MB WAL behind
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"sqlite {self.path}: {exc}") from exc
            self._local.conn = conn
        return conn

    def _run(self, sql: str, params: tuple[Any, ...] = (), *, kv_write: bool = False) -> sqlite3.Cursor | _Finished:
        """One statement; a write commits under the writer lock (`kv_write`: it may change kv)."""
        try:
            if sql.startswith("SELECT"):  # WAL readers never wait for writers
                return self._conn().execute(sql, params)
            with self._writer(kv_write):  # the statement runs to completion (and commits) under the lock
                cur = self._conn().execute(sql, params)
                return _Finished(cur.fetchall(), cur.rowcount)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"sqlite {self.path}: {exc}") from exc

    @contextmanager
    def _transaction(self, *, kv_write: bool = True) -> Iterator[sqlite3.Connection]:
        """Several statements as one write transaction (rolled back on any error). Only the group
        commit, which never writes kv, passes kv_write=False."""
        conn = self._conn()
        try:
            with self._writer(kv_write):
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"sqlite {self.path}: {exc}") from exc

    def _execute_script(self, script: str) -> None:
        try:
            with self._writer():
                self._conn().executescript(script)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"sqlite {self.path}: {exc}") from exc

    @contextmanager
    def _writer(self, kv_write: bool = False) -> Iterator[None]:
        """One writer at a time: a thread lock within the process, flock across processes.

        SQLite's own busy handler sleeps 1, 2, 5, 10 ... ms between retries, so 64 threads in
        2 workers contending for its write lock spent most of their time asleep (p99 ~ 0.8 s
        in `python -m emulator.bench`); a blocked flock wakes the moment the lock is free.
        A write that may change kv bumps the kv generation before the lock is released."""
        self._own_lock()
        with self._thread_lock:
            fd = self._lock_file.fileno() if self._lock_file else None
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                if kv_write and self._kv_gen is not None:  # also after a failure: a spare bump is harmless
                    self._kv_gen.bump()
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)

    def _own_lock(self) -> None:
        """Open this process's lock file and counter map (again after a fork: an inherited
        descriptor shares the parent's lock)."""
        if self._lock_pid != process.pid():
            self._open_lock()

    def _open_lock(self) -> None:
        """The lock file: its flock orders writers (a performance device: SQLite's own locking
        guarantees every invariant) and its first 8 bytes, mapped shared, count kv changes."""
        self._thread_lock, self._lock_pid = threading.RLock(), process.pid()
        self._kv_gen = None
        self._kv_cache.clear()
        if self.path != ":memory:":
            try:
                self._lock_file = open(self.path + LOCK_SUFFIX, "a+b")  # noqa: SIM115  (kept for the process's life)
            except OSError as exc:
                raise StoreUnavailable(f"sqlite {self.path}: cannot open its lock file {self.path}{LOCK_SUFFIX}: "
                                       f"{exc.strerror or exc}") from None
            weakref.finalize(self, self._lock_file.close)  # a store dropped without close() lets it go too
            self._kv_gen = _Generation.open(self._lock_file.fileno())
            if self._kv_gen is not None:
                weakref.finalize(self, self._kv_gen.close)

    # --- key/value -----------------------------------------------------------------
    def get(self, key: str) -> str | None:
        row = self._run("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def get_many(self, keys: tuple[str, ...]) -> dict[str, str | None]:
        """Served from this process's copy while the kv generation is unchanged: every request
        reads the clock offset and profile version this way (Runtime.moment), which change
        only through the control plane. The generation is read before the SELECT, so a copy
        is never newer than its generation says, and a writer bumps it before releasing its
        lock, so a change is seen by every request that starts after the change returned."""
        self._own_lock()
        generation = self._kv_gen.read() if self._kv_gen is not None else None
        cached = self._kv_cache.get(keys)
        if cached is not None and generation is not None and cached[0] == generation:
            return dict(cached[1])
        found = dict(self._run(f"SELECT key, value FROM kv WHERE key IN ({', '.join('?' * len(keys))})",
                               keys).fetchall())
        values = {key: found.get(key) for key in keys}
        if generation is not None:
            if len(self._kv_cache) >= KV_CACHE_SIZE:
                self._kv_cache.clear()
            self._kv_cache[keys] = (generation, values)
        return dict(values)

    def set(self, key: str, value: str) -> None:
        self._run("INSERT INTO kv(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                  (key, value), kv_write=True)

    def set_many(self, values: dict[str, str | None]) -> None:
        with self._transaction() as conn:
            for key, value in values.items():
                if value is None:
                    conn.execute("DELETE FROM kv WHERE key = ?", (key,))
                else:
                    conn.execute("INSERT INTO kv(key, value) VALUES (?, ?) "
                                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def set_if_absent(self, key: str, value: str) -> str:
        self._run("INSERT OR IGNORE INTO kv(key, value) VALUES (?, ?)", (key, value), kv_write=True)
        return self.get(key) or value

    def delete(self, key: str) -> None:
        self._run("DELETE FROM kv WHERE key = ?", (key,), kv_write=True)

    def incr_float(self, key: str, amount: float) -> float:
        row = self._run(
            "INSERT INTO kv(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
            "SET value = CAST(CAST(value AS REAL) + CAST(excluded.value AS REAL) AS TEXT) RETURNING value",
            (key, repr(float(amount))), kv_write=True).fetchone()
        return float(row[0])

    # --- counters ------------------------------------------------------------------
    def incr(self, key: str, amount: int = 1, *, scope: str = "", expires_at: float | None = None) -> int:
        row = self._run(
            "INSERT INTO counters(key, scope, value, expires_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = value + excluded.value, "
            "expires_at = COALESCE(excluded.expires_at, expires_at) RETURNING value",
            (key, scope, amount, expires_at)).fetchone()
        return int(row[0])

    def counter(self, key: str) -> int:
        row = self._run("SELECT value FROM counters WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    # --- single use ----------------------------------------------------------------
    def consume(self, token_id: str, *, scope: str, expires_at: float, record: Record) -> Record | Expired | None:
        if self._grouped(_Consume((token_id, scope, expires_at, dump(record), expires_at))):
            return None
        return self.consumed(token_id, expires_at=expires_at) or {}  # {}: reset in between

    def consumed(self, token_id: str, *, expires_at: float | None = None) -> Record | Expired | None:
        row = self._run("SELECT (SELECT record FROM consumed WHERE token_id = ?), "
                        "(SELECT CAST(value AS REAL) FROM kv WHERE key = ?)", (token_id, HORIZON_KEY)).fetchone()
        if row[0] is not None:
            return dict(load(row[0]))
        return Expired(row[1]) if None not in (row[1], expires_at) and expires_at <= row[1] else None

    def use(self, key: str, *, scope: str, expires_at: float) -> int | Expired:
        row = self._run("INSERT INTO uses(key, scope, value, expires_at) "
                        f"SELECT ?, ?, 1, ? WHERE {AFTER_HORIZON} "
                        "ON CONFLICT(key) DO UPDATE SET value = value + 1 RETURNING value",
                        (key, scope, expires_at, expires_at)).fetchone()
        return int(row[0]) if row else Expired(self.horizon())

    def uses(self, key: str) -> int:
        row = self._run("SELECT value FROM uses WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def horizon(self) -> float:
        row = self._run("SELECT CAST(value AS REAL) FROM kv WHERE key = ?", (HORIZON_KEY,)).fetchone()
        return float(row[0]) if row else NO_HORIZON

    # --- runtime apps --------------------------------------------------------------
    def app_add(self, app_key: str, doc: str) -> bool:
        return self._run("INSERT OR IGNORE INTO apps(app_key, doc) VALUES (?, ?)", (app_key, doc)).rowcount == 1

    def app_remove(self, app_key: str) -> bool:
        return self._run("DELETE FROM apps WHERE app_key = ?", (app_key,)).rowcount == 1

    def app_docs(self, app_key: str | None = None) -> dict[str, str]:
        if app_key is not None:
            rows = self._run("SELECT app_key, doc FROM apps WHERE app_key = ?", (app_key,)).fetchall()
        else:
            rows = self._run("SELECT app_key, doc FROM apps ORDER BY app_key").fetchall()
        return dict(rows)

    # --- journal: a ring in shared memory beside the database (store/journal_ring.py) ---------
    def journal_append(self, entry: Record, *, capacity: int) -> int:
        """One copy into the shared ring under its own lock (never the database's), written before
        this returns. The entries one process's concurrent requests reach together are written
        under one hold of the lock (group commit, as for consumes): in a loaded worker each of the
        lock's, the size check's and the write's syscalls costs about 3 us."""
        return int(self._journal_group.submit((encode_entry(entry), capacity)))

    def _append_batch(self, batch: list[Slot]) -> None:
        """A wave of entries, in the order they came, each with its own id. A failure fails every
        slot alike: none of the wave is shown (the ring's latest id moves only at its end)."""
        try:
            self._ring_ready()
            numbers = self._ring.append_batch([slot.op[0] for slot in batch], batch[0].op[1])
        except RING_ERRORS as exc:
            error = self._ring_unavailable(exc)
            for slot in batch:
                slot.error = error
            return
        for slot, number in zip(batch, numbers, strict=True):
            slot.result = number

    def _grouped(self, op: _Consume) -> Any:
        """Group commit (store/group.py): the consumes that one process's concurrent requests
        reach together share one write transaction, each still its own atomic statement with its
        own answer, each committed before its call returns. Taking the writer lock and
        committing once per consume made concurrent requests queue behind it and rewrote the
        same pages on every commit."""
        return self._group.submit(op)

    def _write_batch(self, batch: list[Slot]) -> None:
        """One transaction, each consume its own atomic INSERT. A failure fails every slot alike."""
        try:
            with self._transaction(kv_write=False) as conn:
                for slot in batch:
                    slot.result = conn.execute(CONSUME, slot.op.params).rowcount == 1
        except StoreUnavailable as error:
            for slot in batch:
                slot.error, slot.result = error, None

    @contextmanager
    def _ring_locked(self, *, shared: bool = False) -> Iterator[None]:
        """The ring's lock (never the database's; shared to read), the ring made ready once per
        process; a failing or damaged file is StoreUnavailable, never a crash."""
        try:
            self._ring_ready()
            with self._ring.locked(shared=shared):
                yield
        except RING_ERRORS as exc:
            raise self._ring_unavailable(exc) from exc

    def _ring_ready(self) -> None:
        """Once per process: an earlier version's table journal adopted into a fresh ring."""
        if self._ring_pid != process.pid():
            with self._ring.locked():
                if self.path != ":memory:" and self._ring.fresh():
                    self._adopt_table_journal()
            self._ring_pid = process.pid()

    def _ring_unavailable(self, exc: Exception) -> StoreUnavailable:
        return StoreUnavailable(f"sqlite {self.path}: the journal ring: {exc}")

    def _adopt_table_journal(self) -> None:
        """The entries and the id counter earlier versions kept in the database move into a
        fresh ring, ids unchanged (under the ring's lock, so once)."""
        rows = self._run("SELECT id, entry FROM journal ORDER BY id").fetchall()
        counter = self._run("SELECT value FROM counters WHERE key = ?", (JOURNAL_SEQ,)).fetchone()
        latest = max(int(counter[0]) if counter else 0, rows[-1][0] if rows else 0)
        if latest:
            self._ring.adopt(rows, latest, latest - rows[0][0] + 1 if rows else 1)
        if rows:
            self._run("DELETE FROM journal")

    def journal_query(self, query: JournalQuery) -> list[Record]:
        """Raw candidates are copied under the lock, parsed and matched after it; a scan cut
        short by false candidates is widened until `limit` entries match or the ring ends."""
        want = query.limit
        while True:
            with self._ring_locked(shared=True):
                raws, more = self._ring.query(query, want)
            rows = [e for e in map(parse, raws) if e is not None and query.matches(e)]
            if len(rows) >= query.limit or not more:
                return query.window(rows)
            want *= 2

    def journal_latest_id(self) -> int:
        with self._ring_locked(shared=True):
            return self._ring.latest()

    # --- maintenance ---------------------------------------------------------------
    def reset(self, scope: str | None = None, *, keep_uses: bool = False) -> None:
        tables = ("counters",) if keep_uses and scope is not None else (*SINGLE_USE_TABLES, "counters")
        with self._transaction() as conn:
            for table in tables:
                if scope is None:
                    conn.execute(f"DELETE FROM {table}")
                else:
                    conn.execute(f"DELETE FROM {table} WHERE scope = ?", (scope,))
            if scope is None:
                conn.execute("DELETE FROM kv WHERE key = ?", (HORIZON_KEY,))  # nothing left to guard
        with self._ring_locked():
            self._ring.reset(scope)

    def purge(self, now: float) -> int:
        """One transaction: raise the horizon over the single-use rows about to go, then delete."""
        with self._transaction() as conn:
            latest = conn.execute("SELECT MAX(m) FROM (" + " UNION ALL ".join(
                f"SELECT MAX(expires_at) AS m FROM {t} WHERE expires_at < ?" for t in SINGLE_USE_TABLES) + ")",
                (now,) * len(SINGLE_USE_TABLES)).fetchone()[0]
            if latest is not None:
                conn.execute("INSERT INTO kv(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = "
                             "CASE WHEN CAST(value AS REAL) >= CAST(excluded.value AS REAL) THEN value "
                             "ELSE excluded.value END", (HORIZON_KEY, repr(float(latest))))
            dropped = sum(conn.execute(f"DELETE FROM {t} WHERE expires_at < ?", (now,)).rowcount
                          for t in SINGLE_USE_TABLES)
            return dropped + conn.execute("DELETE FROM counters WHERE expires_at IS NOT NULL AND expires_at < ?",
                                          (now,)).rowcount

    def ping(self) -> None:
        """The file is still ours and writable (a deleted, replaced or read-only database fails
        every new connection and write while old connections may still answer SELECT 1)."""
        if self._inode is not None:
            self._check_file()
        self._run("SELECT 1").fetchone()

    def _check_file(self) -> None:
        try:
            inode = os.stat(self._abs).st_ino
        except FileNotFoundError:
            raise StoreUnavailable(f"sqlite {self.path}: the database file was deleted under the running "
                                   "server (restart it to start from an empty store)") from None
        except OSError as exc:
            raise StoreUnavailable(f"sqlite {self.path}: cannot stat the database file: {exc}") from None
        if inode != self._inode:
            raise StoreUnavailable(f"sqlite {self.path}: the database file was replaced under the running server "
                                   "(restart it to use the new file)")
        for name in (self._abs, self._abs + "-wal", os.path.dirname(self._abs)):
            if os.path.exists(name) and not os.access(name, os.W_OK):
                raise StoreUnavailable(f"sqlite {self.path}: {name} is read-only: writes fail")
        problem = self._ring.problem()
        if problem:
            raise StoreUnavailable(f"sqlite {self.path}: the journal ring: {problem}")

    def stats(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for table in ("consumed", "uses", "counters"):
            out[table] = self._run(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        with self._ring_locked(shared=True):
            out["journal"] = self._ring.count()
        if self.path != ":memory:":
            out["bytes"] = sum(os.path.getsize(p) for p in (self.path, self.path + "-wal", self.path + RING_SUFFIX)
                               if os.path.exists(p))
        return out

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        if self._kv_gen is not None:
            self._kv_gen.close()
            self._kv_gen = None
        self._kv_cache.clear()
        self._ring.close()
        self._ring_pid = -1
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file, self._lock_pid = None, -1  # reopened on next use


class _Finished:
    """A write statement's result, fetched while the write lock was held."""

    __slots__ = ("rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self.rows, self.rowcount = rows, rowcount

    def fetchone(self) -> Any:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[Any]:
        return self.rows


class _Generation:
    """A counter of kv changes shared by every process on one database: 8 bytes of the lock
    file, mapped shared. Bumped only under the writer flock, so increments are never lost."""

    COUNTER = struct.Struct("<Q")

    def __init__(self, mapped: mmap.mmap) -> None:
        self._map = mapped

    @classmethod
    def open(cls, fd: int) -> _Generation | None:
        """Map the lock file's counter (growing a fresh file to 8 zero bytes); None if the file
        system cannot map it, and then every get_many reads the database."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if os.fstat(fd).st_size < cls.COUNTER.size:
                    os.ftruncate(fd, cls.COUNTER.size)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            return cls(mmap.mmap(fd, cls.COUNTER.size))
        except (OSError, ValueError):
            return None

    def read(self) -> int:
        return self.COUNTER.unpack_from(self._map)[0]

    def bump(self) -> None:
        self.COUNTER.pack_into(self._map, 0, (self.read() + 1) % 2**64)

    def close(self) -> None:
        self._map.close()


class _Consume(NamedTuple):
    params: tuple[Any, ...]  # CONSUME's parameters


def _thread_local() -> threading.local:
    """Per OS thread, also in a gevent worker, whose patched threading.local is per greenlet (a
    new connection per client connection). Greenlets of one thread can share a connection: none
    yields between a statement and its fetch, or inside a transaction (flock does not yield)."""
    if gevent_patched():
        return sys.modules["gevent.monkey"].get_original("threading", "local")()
    return threading.local()


def remove_database(path: str) -> None:
    """Delete a database and every file the store keeps beside it (missing ones are fine)."""
    for suffix in FILE_SUFFIXES:
        with contextlib.suppress(OSError):
            os.remove(path + suffix)

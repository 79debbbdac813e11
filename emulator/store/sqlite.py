"""sqlite:///path — the default store, shared by every worker of one host.

WAL mode and a busy timeout let several gunicorn workers write concurrently; every
invariant is one statement (INSERT OR IGNORE, UPSERT ... RETURNING), so it is atomic
across processes. Connections are per thread and reopened after fork."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import StoreUnavailable
from .base import JOURNAL_SEQ, Store, dump, load

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (
    key TEXT PRIMARY KEY, scope TEXT NOT NULL, value INTEGER NOT NULL, expires_at REAL);
CREATE TABLE IF NOT EXISTS consumed (
    token_id TEXT PRIMARY KEY, scope TEXT NOT NULL, expires_at REAL NOT NULL, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY, app_key TEXT, endpoint TEXT, token_fp TEXT, token_id TEXT, entry TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS consumed_expiry ON consumed(expires_at);
CREATE INDEX IF NOT EXISTS counters_expiry ON counters(expires_at);
CREATE INDEX IF NOT EXISTS journal_token ON journal(token_fp);
"""


class SQLiteStore(Store):
    def __init__(self, url: str, path: str):
        self.url = url
        self.path = path
        self._local = threading.local()
        self._pid = os.getpid()
        self._thread_lock, self._lock_pid, self._lock_file = threading.RLock(), -1, None
        self._group: _Group | None = None
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._execute_script(SCHEMA)

    # --- connections ---------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        if self._pid != os.getpid():  # forked: never reuse the parent's connections
            self._local = threading.local()
            self._pid = os.getpid()
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA busy_timeout=10000")
                conn.execute("PRAGMA journal_size_limit=4194304")  # a big purge must not leave a 20 MB WAL behind
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"sqlite {self.path}: {exc}") from exc
            self._local.conn = conn
        return conn

    def _run(self, sql: str, params: tuple = ()) -> sqlite3.Cursor | _Finished:
        try:
            if sql.startswith("SELECT"):  # WAL readers never wait for writers
                return self._conn().execute(sql, params)
            with self._writer():  # the statement runs to completion (and commits) under the lock
                cur = self._conn().execute(sql, params)
                return _Finished(cur.fetchall(), cur.rowcount)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"sqlite {self.path}: {exc}") from exc

    def _execute_script(self, script: str) -> None:
        try:
            with self._writer():
                self._conn().executescript(script)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"sqlite {self.path}: {exc}") from exc

    @contextmanager
    def _writer(self) -> Iterator[None]:
        """One writer at a time: a thread lock within the process, flock across processes.

        SQLite's own busy handler sleeps 1, 2, 5, 10 ... ms between retries, so 64 threads in
        2 workers contending for its write lock spent most of their time asleep (p99 ~ 0.8 s
        in `python -m emulator.bench`); a blocked flock wakes the moment the lock is free."""
        if self._lock_pid != os.getpid():  # forked: an inherited descriptor shares the parent's lock
            self._open_lock()
        with self._thread_lock:
            fd = self._lock_file.fileno() if self._lock_file else None
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)

    def _open_lock(self) -> None:
        """Only a performance device: SQLite's own locking still guarantees every invariant."""
        self._thread_lock, self._lock_pid = threading.RLock(), os.getpid()
        if self.path != ":memory:":
            self._lock_file = open(self.path + ".lock", "a+b")  # noqa: SIM115  (kept for the process's life)

    # --- key/value -----------------------------------------------------------------
    def get(self, key):
        row = self._run("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set(self, key, value):
        self._run("INSERT INTO kv(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                  (key, value))

    def set_if_absent(self, key, value):
        self._run("INSERT OR IGNORE INTO kv(key, value) VALUES (?, ?)", (key, value))
        return self.get(key)

    def delete(self, key):
        self._run("DELETE FROM kv WHERE key = ?", (key,))

    def incr_float(self, key, amount):
        row = self._run(
            "INSERT INTO kv(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
            "SET value = CAST(CAST(value AS REAL) + CAST(excluded.value AS REAL) AS TEXT) RETURNING value",
            (key, repr(float(amount)))).fetchone()
        return float(row[0])

    # --- counters ------------------------------------------------------------------
    def incr(self, key, amount=1, *, scope="", expires_at=None):
        row = self._run(
            "INSERT INTO counters(key, scope, value, expires_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = value + excluded.value, "
            "expires_at = COALESCE(excluded.expires_at, expires_at) RETURNING value",
            (key, scope, amount, expires_at)).fetchone()
        return int(row[0])

    def counter(self, key):
        row = self._run("SELECT value FROM counters WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    # --- single use ----------------------------------------------------------------
    def consume(self, token_id, *, scope, expires_at, record):
        cur = self._run("INSERT OR IGNORE INTO consumed(token_id, scope, expires_at, record) VALUES (?, ?, ?, ?)",
                        (token_id, scope, expires_at, dump(record)))
        return None if cur.rowcount == 1 else (self.consumed(token_id) or {})

    def consumed(self, token_id):
        row = self._run("SELECT record FROM consumed WHERE token_id = ?", (token_id,)).fetchone()
        return load(row[0]) if row else None

    # --- journal -------------------------------------------------------------------
    def journal_append(self, entry, *, capacity):
        """Group commit: concurrent appends of one process share one write transaction.

        Under load every request appends one entry; taking the writer lock once per entry made
        the threads queue behind it across GIL hand-offs (a lock convoy: py-spy showed a third
        of a loaded worker's samples waiting there). Here the first thread to find no writer
        at work becomes the leader and writes every entry queued so far, its own included; the
        others wait for that commit (so an entry is stored before its request answers)."""
        slot = _Slot(entry)
        group = self._group_state()
        with group.cond:
            group.pending.append(slot)
            while not slot.done:
                if group.writing:
                    group.cond.wait()
                    continue
                group.writing, batch, group.pending = True, group.pending, []
                group.cond.release()
                try:
                    self._write_batch(batch, capacity)
                finally:
                    group.cond.acquire()
                    group.writing = False
                    for queued in batch:
                        queued.done = True
                    group.cond.notify_all()
        if slot.error is not None:
            raise slot.error
        return slot.id

    def _group_state(self) -> _Group:
        if self._group is None or self._group.pid != os.getpid():  # forked: a fresh queue
            self._group = _Group(os.getpid())
        return self._group

    def _write_batch(self, batch: list[_Slot], capacity: int) -> None:
        """One transaction: number the entries from the sequence counter and insert them."""
        conn = self._conn()
        try:
            with self._writer():
                conn.execute("BEGIN IMMEDIATE")
                try:
                    last = conn.execute(
                        "INSERT INTO counters(key, scope, value) VALUES (?, '', ?) "
                        "ON CONFLICT(key) DO UPDATE SET value = value + excluded.value RETURNING value",
                        (JOURNAL_SEQ, len(batch))).fetchone()[0]
                    rows = []
                    for offset, slot in enumerate(batch):
                        slot.id = last - len(batch) + 1 + offset
                        e = slot.entry
                        rows.append((slot.id, e.get("app_key"), e.get("endpoint"), e.get("token_fp"),
                                     e.get("token_id"), dump({**e, "id": slot.id})))
                    conn.executemany("INSERT OR REPLACE INTO journal(id, app_key, endpoint, token_fp, token_id, entry) "
                                     "VALUES (?, ?, ?, ?, ?, ?)", rows)
                    if last // 50 != (last - len(batch)) // 50:  # trim in batches: once per 50 ids
                        conn.execute("DELETE FROM journal WHERE id <= ?", (last - capacity,))
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            error = StoreUnavailable(f"sqlite {self.path}: {exc}")
            for slot in batch:
                slot.error, slot.id = error, None

    def journal_query(self, *, after_id=0, endpoint=None, app_key=None, token_fp=None, token_id=None,
                      request_key=None, limit=100):
        where, params = ["id > ?"], [after_id]
        for column, value in (("endpoint", endpoint), ("app_key", app_key), ("token_fp", token_fp), ("token_id", token_id),
                              ("json_extract(entry, '$.request_key')", request_key)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        order = "ASC" if after_id else "DESC"
        rows = self._run(f"SELECT entry FROM journal WHERE {' AND '.join(where)} ORDER BY id {order} LIMIT ?",
                         (*params, limit)).fetchall()
        entries = [load(r[0]) for r in rows]
        return entries if after_id else entries[::-1]

    # --- maintenance ---------------------------------------------------------------
    def reset(self, scope=None):
        conn = self._conn()
        try:
            with self._writer():
                conn.execute("BEGIN IMMEDIATE")
                for table, column in (("consumed", "scope"), ("counters", "scope"), ("journal", "app_key")):
                    if scope is None:
                        conn.execute(f"DELETE FROM {table}")
                    else:
                        conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (scope,))
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreUnavailable(f"sqlite {self.path}: {exc}") from exc

    def purge(self, now):
        a = self._run("DELETE FROM consumed WHERE expires_at < ?", (now,)).rowcount
        b = self._run("DELETE FROM counters WHERE expires_at IS NOT NULL AND expires_at < ?", (now,)).rowcount
        return a + b

    def ping(self):
        self._run("SELECT 1").fetchone()

    def stats(self):
        out: dict[str, Any] = {}
        for table in ("consumed", "counters", "journal"):
            out[table] = self._run(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        if self.path != ":memory:":
            out["bytes"] = sum(os.path.getsize(p) for p in (self.path, self.path + "-wal") if os.path.exists(p))
        return out

    def close(self):
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class _Finished:
    """A write statement's result, fetched while the write lock was held."""

    __slots__ = ("rows", "rowcount")

    def __init__(self, rows: list, rowcount: int):
        self.rows, self.rowcount = rows, rowcount

    def fetchone(self):
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list:
        return self.rows


class _Slot:
    """One entry waiting for a group commit."""

    __slots__ = ("entry", "id", "error", "done")

    def __init__(self, entry: dict[str, Any]):
        self.entry, self.id, self.error, self.done = entry, None, None, False


class _Group:
    """A process's queue of entries and whether a leader is writing them."""

    def __init__(self, pid: int):
        self.pid, self.pending, self.writing = pid, [], False
        self.cond = threading.Condition(threading.Lock())

"""sqlite:///path — the default store, shared by every worker of one host.

WAL mode and a busy timeout let several gunicorn workers write concurrently; every
invariant is one statement (INSERT OR IGNORE, UPSERT ... RETURNING), so it is atomic
across processes. Connections are per thread and reopened after fork."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

from ..errors import StoreUnavailable
from .base import Store, dump, load

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
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"sqlite {self.path}: {exc}") from exc
            self._local.conn = conn
        return conn

    def _run(self, sql: str, params: tuple = ()) -> sqlite3.Cursor:
        try:
            return self._conn().execute(sql, params)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"sqlite {self.path}: {exc}") from exc

    def _execute_script(self, script: str) -> None:
        try:
            self._conn().executescript(script)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"sqlite {self.path}: {exc}") from exc

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
        entry_id = int(entry["id"])
        self._run("INSERT OR REPLACE INTO journal(id, app_key, endpoint, token_fp, token_id, entry) VALUES (?, ?, ?, ?, ?, ?)",
                  (entry_id, entry.get("app_key"), entry.get("endpoint"), entry.get("token_fp"),
                   entry.get("token_id"), dump(entry)))
        if entry_id % 50 == 0:  # trim in batches: one DELETE per 50 appends
            self._run("DELETE FROM journal WHERE id <= ?", (entry_id - capacity,))

    def journal_query(self, *, after_id=0, endpoint=None, app_key=None, token_fp=None, token_id=None, limit=100):
        where, params = ["id > ?"], [after_id]
        for column, value in (("endpoint", endpoint), ("app_key", app_key), ("token_fp", token_fp), ("token_id", token_id)):
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

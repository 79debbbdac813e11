"""memory:// — a single-process store (the in-process test fixture, unit tests)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from .base import JOURNAL_SEQ, NO_HORIZON, Expired, JournalQuery, Record, Store

Row = tuple[str, float, Any]  # scope, expires_at, value


class MemoryStore(Store):
    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._lock = threading.Lock()
        self._kv: dict[str, str] = {}
        self._counters: dict[str, tuple[int, str, float | None]] = {}
        self._consumed: dict[str, Row] = {}
        self._uses: dict[str, Row] = {}
        self._horizon = NO_HORIZON
        self._journal: OrderedDict[int, Record] = OrderedDict()
        self._apps: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self._kv.get(key)

    def get_many(self, keys: tuple[str, ...]) -> dict[str, str | None]:
        return {key: self._kv.get(key) for key in keys}

    def set(self, key: str, value: str) -> None:
        with self._lock:
            self._kv[key] = value

    def set_many(self, values: dict[str, str | None]) -> None:
        with self._lock:
            for key, value in values.items():
                if value is None:
                    self._kv.pop(key, None)
                else:
                    self._kv[key] = value

    def set_if_absent(self, key: str, value: str) -> str:
        with self._lock:
            return self._kv.setdefault(key, value)

    def delete(self, key: str) -> None:
        with self._lock:
            self._kv.pop(key, None)

    def incr_float(self, key: str, amount: float) -> float:
        with self._lock:
            value = float(self._kv.get(key) or 0.0) + amount
            self._kv[key] = repr(value)
            return value

    def incr(self, key: str, amount: int = 1, *, scope: str = "", expires_at: float | None = None) -> int:
        with self._lock:
            value, _, old_expiry = self._counters.get(key, (0, scope, None))
            value += amount
            self._counters[key] = (value, scope, expires_at if expires_at is not None else old_expiry)
            return value

    def counter(self, key: str) -> int:
        return self._counters.get(key, (0, "", None))[0]

    def consume(self, token_id: str, *, scope: str, expires_at: float, record: Record) -> Record | Expired | None:
        with self._lock:
            if token_id in self._consumed:
                return dict(self._consumed[token_id][2])
            if expires_at <= self._horizon:
                return Expired(self._horizon)
            self._consumed[token_id] = (scope, expires_at, dict(record))
            return None

    def consumed(self, token_id: str, *, expires_at: float | None = None) -> Record | Expired | None:
        with self._lock:
            row = self._consumed.get(token_id)
            if row is not None:
                return dict(row[2])
            return Expired(self._horizon) if expires_at is not None and expires_at <= self._horizon else None

    def use(self, key: str, *, scope: str, expires_at: float) -> int | Expired:
        with self._lock:
            if expires_at <= self._horizon:
                return Expired(self._horizon)
            count = self._uses.get(key, (scope, expires_at, 0))[2] + 1
            self._uses[key] = (scope, expires_at, count)
            return count

    def uses(self, key: str) -> int:
        row = self._uses.get(key)
        return int(row[2]) if row else 0

    def horizon(self) -> float:
        return self._horizon

    def app_add(self, app_key: str, doc: str) -> bool:
        with self._lock:
            if app_key in self._apps:
                return False
            self._apps[app_key] = doc
            return True

    def app_remove(self, app_key: str) -> bool:
        with self._lock:
            return self._apps.pop(app_key, None) is not None

    def app_docs(self, app_key: str | None = None) -> dict[str, str]:
        with self._lock:
            if app_key is not None:
                return {app_key: self._apps[app_key]} if app_key in self._apps else {}
            return dict(self._apps)

    def journal_append(self, entry: Record, *, capacity: int) -> int:
        with self._lock:
            value, scope, expiry = self._counters.get(JOURNAL_SEQ, (0, "", None))
            entry_id = value + 1
            self._counters[JOURNAL_SEQ] = (entry_id, scope, expiry)
            self._journal[entry_id] = {**entry, "id": entry_id}
            while self._journal and next(iter(self._journal)) <= entry_id - capacity:
                self._journal.popitem(last=False)
            return entry_id

    def journal_query(self, query: JournalQuery) -> list[Record]:
        with self._lock:
            rows = [dict(e) for i, e in self._journal.items() if i > query.after_id and query.matches(e)]
        return query.window(rows)

    def journal_latest_id(self) -> int:
        return self.counter(JOURNAL_SEQ)

    def reset(self, scope: str | None = None, *, keep_uses: bool = False) -> None:
        with self._lock:
            if scope is None:
                self._counters.clear()
                self._consumed.clear()
                self._uses.clear()
                self._journal.clear()
                self._horizon = NO_HORIZON  # every use is forgotten: nothing left to guard
                return
            self._counters = {k: v for k, v in self._counters.items() if v[1] != scope}
            if not keep_uses:
                self._consumed = {k: v for k, v in self._consumed.items() if v[0] != scope}
                self._uses = {k: v for k, v in self._uses.items() if v[0] != scope}
            self._journal = OrderedDict((k, v) for k, v in self._journal.items() if v.get("app_key") != scope)

    def purge(self, now: float) -> int:
        with self._lock:
            dropped = 0
            for rows in (self._consumed, self._uses):
                dead = [k for k, v in rows.items() if v[1] < now]
                self._horizon = max([self._horizon, *(rows[k][1] for k in dead)])
                for k in dead:
                    del rows[k]
                dropped += len(dead)
            dead_counters = [k for k, v in self._counters.items() if v[2] is not None and v[2] < now]
            for k in dead_counters:
                del self._counters[k]
            return dropped + len(dead_counters)

    def ping(self) -> None:
        return None

    def stats(self) -> dict[str, int]:
        return {"consumed": len(self._consumed), "uses": len(self._uses), "counters": len(self._counters),
                "journal": len(self._journal)}

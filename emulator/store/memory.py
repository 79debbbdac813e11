"""memory:// — a single-process store (the in-process test fixture, unit tests)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from .base import JOURNAL_SEQ, Store, matches


class MemoryStore(Store):
    def __init__(self, url: str = "memory://"):
        self.url = url
        self._lock = threading.Lock()
        self._kv: dict[str, str] = {}
        self._counters: dict[str, tuple[int, str, float | None]] = {}
        self._consumed: dict[str, tuple[str, float, dict[str, Any]]] = {}
        self._journal: OrderedDict[int, dict[str, Any]] = OrderedDict()

    def get(self, key):
        return self._kv.get(key)

    def set(self, key, value):
        with self._lock:
            self._kv[key] = value

    def set_if_absent(self, key, value):
        with self._lock:
            return self._kv.setdefault(key, value)

    def delete(self, key):
        with self._lock:
            self._kv.pop(key, None)

    def incr_float(self, key, amount):
        with self._lock:
            value = float(self._kv.get(key) or 0.0) + amount
            self._kv[key] = repr(value)
            return value

    def incr(self, key, amount=1, *, scope="", expires_at=None):
        with self._lock:
            value, _, old_expiry = self._counters.get(key, (0, scope, None))
            value += amount
            self._counters[key] = (value, scope, expires_at if expires_at is not None else old_expiry)
            return value

    def counter(self, key):
        return self._counters.get(key, (0, "", None))[0]

    def consume(self, token_id, *, scope, expires_at, record):
        with self._lock:
            if token_id in self._consumed:
                return dict(self._consumed[token_id][2])
            self._consumed[token_id] = (scope, expires_at, dict(record))
            return None

    def consumed(self, token_id):
        row = self._consumed.get(token_id)
        return dict(row[2]) if row else None

    def journal_append(self, entry, *, capacity):
        with self._lock:
            value, scope, expiry = self._counters.get(JOURNAL_SEQ, (0, "", None))
            entry_id = value + 1
            self._counters[JOURNAL_SEQ] = (entry_id, scope, expiry)
            self._journal[entry_id] = {**entry, "id": entry_id}
            while len(self._journal) > capacity:
                self._journal.popitem(last=False)
            return entry_id

    def journal_query(self, *, after_id=0, endpoint=None, app_key=None, token_fp=None, token_id=None,
                      request_key=None, limit=100):
        filters = (("endpoint", endpoint), ("app_key", app_key), ("token_fp", token_fp), ("token_id", token_id),
                   ("request_key", request_key))
        with self._lock:
            rows = [dict(e) for i, e in self._journal.items() if i > after_id and matches(e, filters)]
        return rows[:limit] if after_id else rows[-limit:]

    def reset(self, scope=None):
        with self._lock:
            if scope is None:
                self._counters.clear()
                self._consumed.clear()
                self._journal.clear()
                return
            self._counters = {k: v for k, v in self._counters.items() if v[1] != scope}
            self._consumed = {k: v for k, v in self._consumed.items() if v[0] != scope}
            self._journal = OrderedDict((k, v) for k, v in self._journal.items() if v.get("app_key") != scope)

    def purge(self, now):
        with self._lock:
            dead = [k for k, v in self._consumed.items() if v[1] < now]
            for k in dead:
                del self._consumed[k]
            dead_counters = [k for k, v in self._counters.items() if v[2] is not None and v[2] < now]
            for k in dead_counters:
                del self._counters[k]
            return len(dead) + len(dead_counters)

    def ping(self):
        return None

    def stats(self):
        return {"consumed": len(self._consumed), "counters": len(self._counters), "journal": len(self._journal)}


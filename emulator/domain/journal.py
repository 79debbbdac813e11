"""The bounded request journal, kept in the shared store so every worker sees every entry.

The only module that reads or writes the store's journal: everything else goes through
`Journal` (or `consumer_number`), with `JournalQuery` as the one filter type."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from ..store.base import JournalBackend, JournalQuery, Record
from .ids import per_process

VALIDATE_ENDPOINTS = ("validate", "backup_validate")  # journal endpoint names of the two validates
# What became of a request, as journal entries and log lines say it.
Outcome = Literal["ok", "valid", "degraded", "rejected", "error", "fault", "minted"]

__all__ = ["Journal", "JournalQuery", "VALIDATE_ENDPOINTS", "consumer_number", "new_request_key",
           "token_fingerprint"]


# Process-wide: a key must be unique within the process whichever app asks for it.
_REQUEST_KEYS = per_process()


def new_request_key() -> str:
    """Names a request while it runs; its journal number is only given when it is recorded."""
    return _REQUEST_KEYS()


def token_fingerprint(token: str | None) -> str | None:
    """A stable short id for any token string, even a forged one (raw tokens are not logged)."""
    if not token:
        return None
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:16]


class Journal:
    def __init__(self, store: JournalBackend, capacity: int) -> None:
        self.store = store
        self.capacity = capacity
        self._latest: tuple[float, int] | None = None  # (read at, id): shared by this process's long-polls

    def record(self, entry: Record) -> int:
        """Append an entry; returns the number the journal gave it (one store write)."""
        return self.store.journal_append(entry, capacity=self.capacity)

    def query(self, query: JournalQuery) -> list[Record]:
        return self.store.journal_query(query)

    def latest_id(self, max_age: float = 0.0, *, now: float = 0.0) -> int:
        """The last number given out: pollers pass it back as `after` (smaller = reset).

        One key read, or none when this process read it less than `max_age` seconds before `now`
        (a monotonic time): the waiting long-polls of a process share one read."""
        seen = self._latest
        if seen is not None and 0 <= now - seen[0] < max_age:
            return seen[1]
        latest = self.store.journal_latest_id()
        self._latest = (now, latest)
        return latest


def consumer_number(store: JournalBackend, record: dict[str, Any]) -> int | None:
    """The journal number of the request that consumed a token (looked up only on this
    failure path, so a success costs no extra write to know its own number)."""
    if record.get("request_id"):  # records written before request keys existed
        return int(record["request_id"])
    key = record.get("request_key")
    rows = store.journal_query(JournalQuery(request_key=key, limit=1)) if key else []
    return int(rows[0]["id"]) if rows else None

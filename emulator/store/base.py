"""The Store: everything that must be true across workers and replicas goes through it.

One small abstract base (like `limits`' storage), picked by URL in `open_store`. Every
operation that guards an invariant is atomic in the backend (no read-then-write)."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

JOURNAL_SEQ = "journal_seq"  # the counter journal ids come from (a full reset restarts it)


class Store(ABC):
    """Shared state: a key/value map, counters, consumed token ids and the request journal.

    `scope` is the app key a row belongs to ("" for global rows); a scoped reset clears one
    app's consumed tokens, counters and journal entries only."""

    url: str = ""

    # --- key/value -----------------------------------------------------------------
    @abstractmethod
    def get(self, key: str) -> str | None: ...

    @abstractmethod
    def set(self, key: str, value: str) -> None: ...

    @abstractmethod
    def set_if_absent(self, key: str, value: str) -> str:
        """Store `value` unless the key exists; return the value that is stored."""

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def incr_float(self, key: str, amount: float) -> float:
        """Atomically add to a float kept under `key` (missing = 0); return the new value."""

    # --- counters ------------------------------------------------------------------
    @abstractmethod
    def incr(self, key: str, amount: int = 1, *, scope: str = "", expires_at: float | None = None) -> int:
        """Atomically add to a counter and return the new value. `expires_at` only tells
        `purge` when the row may go; windowed counters put the window in the key."""

    @abstractmethod
    def counter(self, key: str) -> int: ...

    # --- single use ----------------------------------------------------------------
    @abstractmethod
    def consume(self, token_id: str, *, scope: str, expires_at: float, record: dict[str, Any]) -> dict[str, Any] | None:
        """Mark a token consumed. None if this call consumed it; else the earlier record.
        Exactly one of any number of concurrent callers gets None."""

    @abstractmethod
    def consumed(self, token_id: str) -> dict[str, Any] | None: ...

    # --- journal -------------------------------------------------------------------
    @abstractmethod
    def journal_append(self, entry: dict[str, Any], *, capacity: int) -> int:
        """Add an entry and return the id it was given: the next value of the counter
        `journal_seq`, taken in the same atomic step as the insert (so ids grow in commit
        order across workers). Keep only the newest `capacity` entries."""

    @abstractmethod
    def journal_query(self, *, after_id: int = 0, endpoint: str | None = None, app_key: str | None = None,
                      token_fp: str | None = None, token_id: str | None = None,
                      request_key: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Entries with id > after_id matching every given filter, oldest first, at most `limit`
        (the newest `limit` when after_id is 0)."""

    # --- maintenance ---------------------------------------------------------------
    @abstractmethod
    def reset(self, scope: str | None = None) -> None:
        """Clear consumed tokens, counters and the journal (all, or one app's)."""

    @abstractmethod
    def purge(self, now: float) -> int:
        """Drop consumed rows and counters that expired before `now`; return how many."""

    @abstractmethod
    def ping(self) -> None:
        """Raise StoreUnavailable if the store cannot serve requests."""

    def stats(self) -> dict[str, int]:
        """Row counts, for the health page and the benchmark's store-size figure."""
        return {}

    def close(self) -> None:
        """Release connections (called at shutdown)."""


def dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def load(raw: str | bytes | None) -> Any:
    return None if raw is None else json.loads(raw)


def matches(entry: dict[str, Any], filters: Iterable[tuple[str, Any]]) -> bool:
    return all(value is None or entry.get(key) == value for key, value in filters)

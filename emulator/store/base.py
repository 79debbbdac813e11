"""The Store: everything that must be true across workers and replicas goes through it.

One small abstract base (like `limits`' storage), picked by URL in `open_store`. Every
operation that guards an invariant is atomic in the backend (no read-then-write).

Single use survives every clock by construction: `purge` first raises a monotonic purge
horizon (the latest expiry of any single-use row it deletes), then deletes; `consume`,
`consumed` and `use` answer `Expired` for any expiry at or before that horizon, in the same
atomic step. So a row that was purged can never be consumed again, whatever the virtual
clock, a clock-skew rule or another host's clock says."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

JOURNAL_SEQ = "journal_seq"  # the counter journal ids come from (a full reset restarts it)
HORIZON_KEY = "purge_horizon"  # kv row: the latest expiry of any purged single-use row

Record = dict[str, Any]


@dataclass(frozen=True)
class Expired:
    """A single-use row whose expiry is at or before the store's purge horizon: it may have
    been used and purged, so it is refused whatever the caller's clock says."""

    horizon: float


@dataclass(frozen=True)
class JournalQuery:
    """Which journal entries to read: every given field must match; the newest `limit` when
    `after_id` is 0, else the oldest `limit` with an id above `after_id`."""

    after_id: int = 0
    endpoint: str | None = None
    app_key: str | None = None
    token_fp: str | None = None
    token_id: str | None = None
    request_key: str | None = None
    limit: int = 100

    def filters(self) -> list[tuple[str, str]]:
        """The (field, value) pairs that must match, given ones only."""
        pairs = (("endpoint", self.endpoint), ("app_key", self.app_key), ("token_fp", self.token_fp),
                 ("token_id", self.token_id), ("request_key", self.request_key))
        return [(k, v) for k, v in pairs if v is not None]

    def matches(self, entry: Record) -> bool:
        return all(entry.get(k) == v for k, v in self.filters())

    def window(self, oldest_first: list[Record]) -> list[Record]:
        """Cut matching entries (oldest first) to this query's window."""
        return oldest_first[:self.limit] if self.after_id else oldest_first[-self.limit:]


class JournalBackend(ABC):
    """The request journal's storage: append, query, and the latest id given out."""

    @abstractmethod
    def journal_append(self, entry: Record, *, capacity: int) -> int:
        """Add an entry and return the id it was given: the next value of the counter
        `journal_seq`, taken in the same atomic step as the insert (so ids grow in commit
        order across workers). Keep only the newest `capacity` ids."""

    @abstractmethod
    def journal_query(self, query: JournalQuery) -> list[Record]:
        """Entries matching `query`, oldest first."""

    @abstractmethod
    def journal_latest_id(self) -> int:
        """The last id given out (0 after a full reset)."""


class Store(JournalBackend):
    """Shared state: a key/value map, counters, single-use rows and the request journal.

    `scope` is the app key a row belongs to ("" for global rows); a scoped reset clears one
    app's consumed tokens, counters, uses and journal entries only."""

    url: str = ""

    # --- key/value -----------------------------------------------------------------
    @abstractmethod
    def get(self, key: str) -> str | None: ...

    def get_many(self, keys: tuple[str, ...]) -> dict[str, str | None]:
        """Several keys in one read (one statement or round trip where the backend allows it)."""
        return {key: self.get(key) for key in keys}

    @abstractmethod
    def set(self, key: str, value: str) -> None: ...

    @abstractmethod
    def set_many(self, values: dict[str, str | None]) -> None:
        """Write several keys in one atomic step (None deletes a key): readers see all or none."""

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
    def consume(self, token_id: str, *, scope: str, expires_at: float, record: Record) -> Record | Expired | None:
        """Mark a token consumed. None if this call consumed it; else the earlier record, or
        Expired when `expires_at` is at or before the purge horizon. Exactly one of any
        number of concurrent callers gets None."""

    @abstractmethod
    def consumed(self, token_id: str, *, expires_at: float | None = None) -> Record | Expired | None:
        """The record of an earlier consume, Expired (as in `consume`, when `expires_at` is given), or None."""

    @abstractmethod
    def use(self, key: str, *, scope: str, expires_at: float) -> int | Expired:
        """Count one use of a limited-use item (a server token) and return the uses so far,
        or Expired when `expires_at` is at or before the purge horizon (nothing counted)."""

    @abstractmethod
    def uses(self, key: str) -> int:
        """How many times `use` counted `key` (0 if never, or purged)."""

    @abstractmethod
    def horizon(self) -> float:
        """The purge horizon: single-use rows expiring at or before it may be gone."""

    # --- runtime apps --------------------------------------------------------------
    @abstractmethod
    def app_add(self, app_key: str, doc: str) -> bool:
        """Keep an app's definition unless the key is taken; True if this call added it.
        Exactly one of any number of concurrent callers with one key gets True."""

    @abstractmethod
    def app_remove(self, app_key: str) -> bool:
        """Forget an app's definition; True if it existed."""

    @abstractmethod
    def app_docs(self, app_key: str | None = None) -> dict[str, str]:
        """Every runtime app's definition by key (only `app_key`'s when given). Resets keep them."""

    # --- maintenance ---------------------------------------------------------------
    @abstractmethod
    def reset(self, scope: str | None = None, *, keep_uses: bool = False) -> None:
        """Clear consumed tokens, counters, uses and the journal (all, or one app's); a full reset
        also drops the purge horizon (no use is remembered any more). `keep_uses` (with a scope:
        a removed app) keeps its consumed tokens and server-token uses until they expire."""

    @abstractmethod
    def purge(self, now: float) -> int:
        """Raise the horizon to the latest expiry among the single-use rows that expired
        before `now`, then drop those and expired counters, atomically; return how many."""

    @abstractmethod
    def ping(self) -> None:
        """Raise StoreUnavailable if the store cannot serve requests."""

    def stats(self) -> dict[str, int]:
        """Row counts, for the health page and the benchmark's store-size figure."""
        return {}

    def close(self) -> None:  # noqa: B027  (optional: a backend without connections keeps this no-op)
        """Release connections (called at shutdown)."""


NO_HORIZON = float("-inf")


# json.dumps(value, separators=(",", ":"), sort_keys=True) without building an encoder per call
# (the journal entry and the consume record of every request go through here)
_ENCODE = c_make_encoder(None, None, encode_basestring_ascii, None, ":", ",", True, False, True) \
    if c_make_encoder is not None else None


def dump(value: Any) -> str:
    if _ENCODE is None:  # pragma: no cover - CPython always has the C encoder
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return "".join(_ENCODE(value, 0))


def load(raw: str | bytes | None) -> Any:
    return None if raw is None else json.loads(raw)


def matches(entry: Record, filters: Iterable[tuple[str, Any]]) -> bool:
    return all(value is None or entry.get(key) == value for key, value in filters)

"""Clock: real time plus a virtual offset that lives in the shared store (docs/compatibility.md §14).

All workers read the offset from the store, so advancing the clock through one worker
moves time for every worker and replica at once."""

from __future__ import annotations

import time
from collections.abc import Callable

from ..store.base import Store

CLOCK_KEY = "clock_offset"


def iso(ts: float | None) -> str | None:
    """Seconds since the epoch as an ISO-8601 UTC string (virtual time in, virtual time out)."""
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def parse_offset(raw: str | None) -> float:
    return float(raw) if raw else 0.0


class Clock:
    def __init__(self, store: Store, real_time: Callable[[], float] = time.time) -> None:
        self._store = store
        self._real_time = real_time

    def real(self) -> float:
        return self._real_time()

    def offset(self) -> float:
        return parse_offset(self._store.get(CLOCK_KEY))

    def now(self) -> float:
        """Virtual now: what every expiry check uses."""
        return self._real_time() + self.offset()

    def now_with(self, stored_offset: str | None) -> float:
        """Virtual now from an offset the caller read from the store itself (Runtime.moment)."""
        return self._real_time() + parse_offset(stored_offset)

    def set_offset(self, seconds: float) -> float:
        self._store.set(CLOCK_KEY, repr(float(seconds)))
        return float(seconds)

    def advance(self, seconds: float) -> float:
        """Move virtual time forward atomically (concurrent advances add up)."""
        return self._store.incr_float(CLOCK_KEY, float(seconds))

    def reset(self) -> None:
        self._store.delete(CLOCK_KEY)

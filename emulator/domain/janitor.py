"""Purge expired store rows now and then, from whichever worker happens to be serving."""

from __future__ import annotations

import threading

from ..store.base import Store
from .clock import Clock

GRACE_S = 5.0


class Janitor:
    """Runs `store.purge` at most once per `interval_s` of real time per process.

    Rows are purged against the earlier of real and virtual time, minus a grace. Whatever
    clock the purge used, the store first raises its purge horizon over the rows it drops
    and refuses any single use at or before it, so no clock can resurrect a purged row."""

    def __init__(self, store: Store, clock: Clock, interval_s: float = 30.0):
        self._store, self._clock, self._interval = store, clock, interval_s
        self._next = 0.0
        self._lock = threading.Lock()

    def maybe_purge(self) -> int:
        real = self._clock.real()
        if real < self._next or not self._lock.acquire(blocking=False):
            return 0
        try:
            self._next = real + self._interval
            return self.purge()
        finally:
            self._lock.release()

    def purge(self) -> int:
        now = min(self._clock.real(), self._clock.now())
        return self._store.purge(now - GRACE_S)

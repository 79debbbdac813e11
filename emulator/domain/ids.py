"""Names (16 hex digits) unique across workers, replicas and restarts, made without a
random-number syscall each: request keys, and token and challenge ids."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable

_MASK = (1 << 64) - 1


class UniqueIds:
    """A process draws a random 64-bit start once (a forked child draws its own) and counts up from
    it, so two processes' keys meet only if the ranges of numbers they used overlap: for P
    processes of n requests each, odds of about P^2 * n / 2^64 (1e-7 for a thousand processes of a
    million requests each), where as many independent random keys would meet with odds near 3 %.

    A process's ids sort in the order it made them (16 hex digits, as text), as UUIDv7s and ULIDs
    do and for their reason: a store indexes tokens by id, and consecutive ids land on the same
    index page, where random ones put every insert on a page of its own (twice the pages written
    per consume on SQLite). They were never secret: a token is trusted for its signature."""

    def __init__(self, urandom: Callable[[int], bytes] = os.urandom) -> None:
        self._urandom = urandom
        self._numbers = itertools.count(int.from_bytes(urandom(8), "big"))

    def reseed(self) -> None:
        self._numbers = itertools.count(int.from_bytes(self._urandom(8), "big"))

    def __call__(self) -> str:
        return (next(self._numbers) & _MASK).to_bytes(8, "big").hex()


def per_process() -> UniqueIds:
    """A generator for this process, drawn again in every forked child: a gunicorn worker must not
    count on from its master's numbers."""
    ids = UniqueIds()
    os.register_at_fork(after_in_child=ids.reseed)
    return ids

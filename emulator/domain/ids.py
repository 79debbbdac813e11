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
    `scrambled` passes the count through a bijection of 64-bit numbers (splitmix64's finaliser):
    the same odds, and consecutive ids share no visible pattern, as the real service's look."""

    def __init__(self, urandom: Callable[[int], bytes] = os.urandom, *, scrambled: bool = False) -> None:
        self._urandom = urandom
        self._scrambled = scrambled
        self._numbers = itertools.count(int.from_bytes(urandom(8), "big"))

    def reseed(self) -> None:
        self._numbers = itertools.count(int.from_bytes(self._urandom(8), "big"))

    def __call__(self) -> str:
        n = next(self._numbers) & _MASK
        if self._scrambled:
            n = ((n ^ (n >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
            n = ((n ^ (n >> 27)) * 0x94D049BB133111EB) & _MASK
            n ^= n >> 31
        return n.to_bytes(8, "big").hex()


def per_process(*, scrambled: bool = False) -> UniqueIds:
    """A generator for this process, drawn again in every forked child: a gunicorn worker must not
    count on from its master's numbers."""
    ids = UniqueIds(scrambled=scrambled)
    os.register_at_fork(after_in_child=ids.reseed)
    return ids

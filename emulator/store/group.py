"""Group commit for one process: concurrent calls share one trip to the store.

The first caller to find nobody writing becomes the leader: in a gevent worker it first
yields once, so every other ready greenlet reaches its own store call and queues behind it;
then it hands every queued slot, its own included, to `flush` at once. The others wait until
that flush is done, so each call still returns only after its own work reached the store.
With OS threads nobody yields: calls that arrive while a flush is under way form the next one.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from ..errors import StoreUnavailable


class Slot:
    """One queued call: what to do (`op`, the flush's business) and, once done, its answer."""

    __slots__ = ("op", "result", "error", "done")

    def __init__(self, op: Any) -> None:
        self.op = op
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = False


class Group:
    """A process's queue of calls and whether a leader is flushing them. `flush` sets each
    slot's `result` or `error`; it runs with no lock held, one flush at a time."""

    def __init__(self, flush: Callable[[list[Slot]], None]) -> None:
        self._flush = flush
        self._writing = False
        self._pending: list[Slot] = []
        self._cond = threading.Condition(threading.Lock())
        self._cooperative = gevent_patched()

    def submit(self, op: Any) -> Any:
        """Queue `op`, wait for the flush that carries it, and return its result (or raise its error)."""
        slot = Slot(op)
        with self._cond:
            self._pending.append(slot)
            while not slot.done:
                if self._writing:
                    self._cond.wait()
                else:
                    self._lead(slot)
        if slot.error is not None:
            raise slot.error
        return slot.result

    def _lead(self, own: Slot) -> None:
        """Flush everything queued (called and returning with the condition held)."""
        self._writing = True
        self._cond.release()
        batch: list[Slot] = []
        try:
            if self._cooperative:
                time.sleep(0)  # patched by gevent: let the other ready greenlets queue first
            with self._cond:
                batch, self._pending = self._pending, []
            self._flush(batch)
        except BaseException as exc:  # a bug or a killed greenlet: the others must not wait forever
            with self._cond:
                if own in self._pending:  # interrupted before taking the queue: nobody waits for ours
                    self._pending.remove(own)
            for slot in batch:
                if slot.error is None:
                    slot.error = StoreUnavailable(f"the store call was interrupted: {type(exc).__name__}")
            raise
        finally:
            self._cond.acquire()
            self._writing = False
            for slot in batch:
                slot.done = True
            self._cond.notify_all()


def gevent_patched() -> bool:
    """True in a gevent worker (threading monkey-patched): waits there are greenlet switches."""
    gevent_monkey = sys.modules.get("gevent.monkey")
    return gevent_monkey is not None and bool(gevent_monkey.is_module_patched("threading"))

"""Group commit for one process: concurrent calls share one trip to the store.

The first caller to find nobody writing becomes the leader: in a gevent worker it first
gives way until the hub has run everything ready and polled its sockets once, so every other
ready greenlet, and every connection whose request came in meanwhile, reaches its own store call
and queues behind it; then it hands every queued slot, its own included, to `flush`
at once. The others wait until that flush is done, so each call still returns only after its
own work reached the store. With OS threads nobody yields: calls that arrive while a flush is
under way form the next one.

A group follows its process: a forked child starts with an empty queue, and decides then how to
wait (gunicorn forks its workers before gevent patches them).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from .. import process
from ..errors import StoreUnavailable

# How long a gevent leader gives way, twice: a timer that is already due. gevent runs `sleep(0)`
# as one callback in turn with the others, so a greenlet that gave way after the leader did (every
# connection takes a turn after each answer, gevent_worker.py) resumed only after the flush and
# started its next request outside the wave; the waves broke up into uneven ones, and a request
# that missed one waited a whole wave more (validate's p99 at 1.6 to 1.8 x the floor's under
# `wrk -c32`, its p99.9 45 to 100 ms; with one such timer, 1.0 to 1.3 x and 12 to 16 ms, for the
# same req/s). A due timer fires once the hub has run its callbacks and polled its sockets (without
# waiting), but before the connections that poll found ready: the second lets those run up to the
# group too (4 % more req/s and 8 % lower p99 again, in 6 interleaved rounds).
GIVE_WAY_S = 1e-9


class Slot:
    """One queued call: what to do (`op`, the flush's business) and, once done, its answer."""

    __slots__ = ("op", "result", "error", "done")

    def __init__(self, op: Any) -> None:
        self.op = op
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = False


class Group:
    """A process's queue of calls and the flush under way, if any. `flush` sets each slot's
    `result` or `error`; it runs with no lock held, one flush at a time."""

    def __init__(self, flush: Callable[[list[Slot]], None]) -> None:
        self._flush = flush
        self._start()

    def _start(self) -> None:
        """An empty queue for this process, waiting the way this process waits."""
        self._pid = process.pid()
        self._cooperative = gevent_patched()
        # gevent: one OS thread whose greenlets switch only where they wait, so no lock is needed
        self._lock: AbstractContextManager[Any] = nullcontext() if self._cooperative else threading.Lock()
        self._pending: list[Slot] = []
        self._flushing: threading.Event | None = None  # set when the flush under way is done

    def submit(self, op: Any) -> Any:
        """Queue `op`, wait for the flush that carries it, and return its result (or raise its error)."""
        if self._pid != process.pid():  # forked: the parent's queue and waiters are not ours
            self._start()
        slot = Slot(op)
        with self._lock:
            self._pending.append(slot)
        while not slot.done:
            with self._lock:
                flushing = self._flushing
                if flushing is None:
                    self._flushing = threading.Event()
            if flushing is None:
                self._lead(slot)
            else:
                flushing.wait()
        if slot.error is not None:
            raise slot.error
        return slot.result

    def _lead(self, own: Slot) -> None:
        """Flush everything queued so far, `own` included (unless an earlier flush took it)."""
        batch: list[Slot] = []
        try:
            if self._cooperative:
                time.sleep(GIVE_WAY_S)  # patched by gevent: the hub runs what is ready and polls,
                time.sleep(GIVE_WAY_S)  # then runs the connections it found ready: all queue first
            with self._lock:
                batch, self._pending = self._pending, []
            if batch:
                self._flush(batch)
        except BaseException as exc:  # a bug or a killed greenlet: the others must not wait forever
            with self._lock:
                if own in self._pending:  # interrupted before taking the queue: nobody waits for ours
                    self._pending.remove(own)
            for slot in batch:
                if slot.error is None:
                    slot.error = StoreUnavailable(f"the store call was interrupted: {type(exc).__name__}")
            raise
        finally:
            with self._lock:
                for slot in batch:
                    slot.done = True
                done, self._flushing = self._flushing, None
            assert done is not None
            done.set()


def gevent_patched() -> bool:
    """True in a gevent worker (threading monkey-patched): waits there are greenlet switches."""
    gevent_monkey = sys.modules.get("gevent.monkey")
    return gevent_monkey is not None and bool(gevent_monkey.is_module_patched("threading"))

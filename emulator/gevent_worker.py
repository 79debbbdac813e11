"""gunicorn's gevent worker, patched in a tenth of the time.

gevent's `monkey.patch_all()` asks `importlib.metadata` for its plugins 25 times (once per event
of every module it patches), and every ask re-reads the entry points of every installed
distribution: about 250 ms of CPU in each worker before it can answer (about a third of the
whole cold start of `serve` on a 2-core machine). The answer cannot change while one worker
patches, so it is read once per distinct question for the length of the patch, then the real
function is put back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from importlib import metadata
from typing import Any

from gunicorn.workers.ggevent import GeventWorker as _GeventWorker

from .quiet_exit import leave_now


class GeventWorker(_GeventWorker):
    """gunicorn.workers.ggevent.GeventWorker, with the entry points read once while it patches."""

    def patch(self) -> None:
        with entry_points_read_once():
            super().patch()

    def handle_quit(self, sig: int, frame: Any) -> None:
        """SIGQUIT, or SIGINT (Ctrl-C reaches every process of the terminal's group): stop at once,
        as gunicorn's worker does, but without its sys.exit inside a greenlet, which gevent printed
        as a failed greenlet with a traceback at every Ctrl-C."""
        self.alive = False
        self.cfg.worker_int(self)
        leave_now()


@contextmanager
def entry_points_read_once() -> Iterator[None]:
    """While inside: `importlib.metadata.entry_points(**selection)` answers each selection once.

    The worker is single-threaded while it patches (gunicorn patches first thing in the forked
    worker), so nothing else sees the cached function."""
    real = metadata.entry_points
    metadata.entry_points = cache(real)  # type: ignore[assignment]
    try:
        yield
    finally:
        metadata.entry_points = real

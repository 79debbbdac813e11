"""How a `serve` worker process ends once it has stopped: at once, without the interpreter's
teardown (gunicorn's worker_exit hook, and the gevent worker's quick stop)."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any


def leave_now() -> None:
    """End this worker process without the interpreter's teardown. Under gevent that teardown runs
    logging's handler callbacks after gevent's thread module is gone, and printed two tracebacks
    at every stop. Nothing is lost: store writes are committed (SQLite) or answered (Redis) before
    a request's answer, and the journal ring's pages are the file's."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0)


def exit_quietly(server: Any, worker: Any) -> None:
    """gunicorn's worker_exit hook: a worker that booted and stopped as asked leaves at once (see
    leave_now); one that failed keeps its exit code, which tells the master what went wrong."""
    if worker.booted and not worker.alive:
        leave_now()

"""This process's id, known without asking the kernel each time.

`os.getpid()` is a system call on every use (glibc stopped caching it), about 3 us each inside a
loaded worker on a 2-core machine, and a request asked 3 to 6 times: the store's checks that it
was not forked since it opened its connections and locks, and the journal's `worker_pid`. The id
is read once, and again in every forked child before any of its code runs."""

from __future__ import annotations

import os


class _ProcessId:
    def __init__(self) -> None:
        self.value = os.getpid()

    def refresh(self) -> None:
        self.value = os.getpid()


# Process-wide on purpose: it describes the process, and a fork must renew it (gunicorn's workers).
_PID = _ProcessId()
os.register_at_fork(after_in_child=_PID.refresh)


def pid() -> int:
    return _PID.value

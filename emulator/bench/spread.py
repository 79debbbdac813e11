"""How keep-alive connections spread across gunicorn workers while wrk runs.

Each sample reads, from /proc, which worker process holds each established connection to
the server's port; with keep-alive a connection stays on the worker that accepted it, so a
lopsided spread (say 32/0) halves the usable CPU. Nothing in the app is instrumented."""

from __future__ import annotations

import statistics
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse

from .procs import Proc, connection_spread


class SpreadSampler:
    def __init__(self, proc: Proc, interval_s: float = 0.5, skip_first_s: float = 1.0):
        self.proc, self.interval, self.skip = proc, interval_s, skip_first_s
        self.port = urlparse(proc.url).port or 80
        self.samples: list[list[int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="spread-sampler", daemon=True)

    def _loop(self) -> None:
        if self._stop.wait(self.skip):  # let wrk open its connections first
            return
        while not self._stop.is_set():
            counts = sorted(connection_spread(self.proc, self.port).values(), reverse=True)
            if sum(counts):
                self.samples.append(counts)
            self._stop.wait(self.interval)

    def summary(self) -> dict:
        """The typical per-worker split (busiest first) and the worst share of the busiest worker."""
        if not self.samples:
            return {"per_worker": [], "samples": 0, "busiest_share": None, "label": "n/a"}
        shares = [s[0] / sum(s) for s in self.samples]
        typical = min(self.samples, key=lambda s: abs(s[0] / sum(s) - statistics.median(shares)))
        return {"per_worker": typical, "samples": len(self.samples), "busiest_share": round(max(shares), 3),
                "label": "/".join(str(c) for c in typical)}


@contextmanager
def sampling(proc: Proc | None) -> Iterator[SpreadSampler | None]:
    if proc is None:
        yield None
        return
    sampler = SpreadSampler(proc)
    sampler._thread.start()
    try:
        yield sampler
    finally:
        sampler._stop.set()
        sampler._thread.join(5)

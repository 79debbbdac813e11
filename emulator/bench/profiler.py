"""`--profile-worker`: where one emulator worker spends its CPU while wrk loads it.

py-spy samples the worker from outside (no instrumentation, `--nonblocking` so the worker is
never paused); idle samples (a greenlet hub or a thread waiting for I/O) are left out, so the
shares are of the time the worker was busy. The summary names the functions with the most
samples on top of the stack (self) and anywhere on it (inclusive)."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .procs import Proc

RATE_HZ = 250
TOP = 12


@dataclass
class WorkerProfile:
    pid: int | None = None
    summary: dict = field(default_factory=dict)


@contextmanager
def profiling(proc: Proc, duration_s: int, work_dir: Path, enabled: bool) -> Iterator[WorkerProfile | None]:
    """Sample one worker (the first child of the gunicorn master) for `duration_s` seconds."""
    if not enabled:
        yield None
        return
    result = WorkerProfile()
    pyspy = shutil.which("py-spy")
    workers = [p for p in proc.tree() if p != proc.pid]
    if not pyspy or not workers:
        result.summary = {"error": "py-spy is not installed (pip install py-spy)" if not pyspy else "no worker"}
        yield result
        return
    result.pid = workers[0]
    out = work_dir / f"py-spy-{result.pid}.txt"
    sampler = subprocess.Popen([pyspy, "record", "--pid", str(result.pid), "--duration", str(duration_s),
                                "--rate", str(RATE_HZ), "--format", "raw", "--output", str(out), "--nonblocking"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        yield result
    finally:
        try:
            _, err = sampler.communicate(timeout=duration_s + 30)
        except subprocess.TimeoutExpired:
            sampler.kill()
            _, err = sampler.communicate()
        result.summary = summarize(out.read_text()) if out.exists() else {"error": (err or "no output")[-300:]}


def summarize(raw: str, top: int = TOP) -> dict:
    """Collapsed stacks (`frame;frame;... count` per line) -> the top functions by share of samples."""
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_name(f) for f in stack.split(";")]
        total += n
        own[frames[-1]] += n
        for name in set(frames):
            anywhere[name] += n
    share = lambda counter: [(name, round(c / total, 3)) for name, c in counter.most_common(top)]  # noqa: E731
    return {"samples": total, "self": share(own) if total else [], "inclusive": share(anywhere) if total else []}


def _name(frame: str) -> str:
    """`fn (path/to/module.py:123)` -> `fn (module.py)`: one entry per function, not per line."""
    fn, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{fn} ({'/'.join(path.split('/')[-2:])})" if path else fn


def lines(label: str, summary: dict) -> list[str]:
    if not summary:
        return []
    if "error" in summary:
        return [f"profile of {label}: not taken ({summary['error']})"]
    out = [f"profile of one {label} worker ({summary['samples']} busy samples at {RATE_HZ} Hz): "
           "share of busy time, on top of the stack | anywhere on it"]
    inclusive = dict(summary["inclusive"])
    for name, share in summary["self"]:
        out.append(f"  {share:>6.1%} | {inclusive.get(name, share):>6.1%}  {name}")
    out.append("  inclusive leaders: " + "; ".join(f"{name} {share:.0%}" for name, share in summary["inclusive"][:8]))
    return out

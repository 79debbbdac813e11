"""Processes under test: start in their own session, wait until healthy, measure, stop.

Only processes this module started are ever signalled (by their process group id, which
is their own pid because each one starts a new session)."""

from __future__ import annotations

import compileall
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import emulator

PACKAGE_DIR = Path(emulator.__file__).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Proc:
    """A started server: its Popen, the URL it answers on, and where its output goes."""

    name: str
    popen: subprocess.Popen
    url: str
    log: Path
    started: float = field(default_factory=time.perf_counter)
    ready_s: float | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def tree(self) -> list[int]:
        """This process and all its descendants (gunicorn master + workers, node + children)."""
        return process_tree(self.pid)

    def tail(self, chars: int = 2000) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-chars:]
        return ""

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.popen.wait(5)


def start(name: str, argv: list[str], url: str, health_path: str, log_dir: Path, *,
          env: dict[str, str] | None = None, cwd: str | Path | None = None, timeout: float = 60.0,
          health_check: Callable[[], bool] | None = None) -> Proc:
    """Start argv in a new session and poll until healthy (url+health_path answers 2xx, or
    `health_check()` is true); `ready_s` is the cold start: process start to healthy."""
    if argv[0] == sys.executable:
        compile_as_installed()
    log = log_dir / f"{name}.log"
    handle = open(log, "ab")
    t0 = time.perf_counter()
    popen = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True)
    handle.close()
    proc = Proc(name, popen, url, log, t0)
    try:
        wait_healthy(proc, health_check or (lambda: probe(url + health_path)), timeout)
    except BaseException:
        proc.stop()
        raise
    proc.ready_s = time.perf_counter() - t0
    return proc


def compile_as_installed(package_dir: Path | None = None) -> None:
    """Write the package's bytecode cache as `pip install` does, so that a Python target imports the
    emulator as installed even where PYTHONDONTWRITEBYTECODE is set (this checkout's test machines,
    the Docker image's build environment): otherwise every cold start of `serve` compiled its ~60
    modules from source while the floor compiled a handful, and the ratio measured the compiler."""
    compileall.compile_dir(package_dir or PACKAGE_DIR, quiet=1)


def wait_healthy(proc: Proc, healthy: Callable[[], bool], timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}: {proc.tail()}")
        if healthy():
            return
        time.sleep(0.01)  # polling for readiness
    raise RuntimeError(f"{proc.name} not healthy after {timeout:.0f} s: {proc.tail()}")


def probe(url: str, *, method: str = "GET", body: bytes | None = None, timeout: float = 1.0) -> bool:
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


# --- /proc measurements -------------------------------------------------------------

def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            kids.setdefault(ppid, []).append(int(entry))
    return kids


def process_tree(root: int) -> list[int]:
    kids, out, todo = _children_map(), [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def pss_kib(pid: int) -> int:
    """Proportional set size of one process (shared pages split between their users)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def rss_kib(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def memory(proc: Proc) -> dict[str, object]:
    """PSS summed over the process tree (the fair figure for forked workers), plus RSS per process."""
    pids = proc.tree()
    return {"pss_mib": round(sum(pss_kib(p) for p in pids) / 1024, 1),
            "rss_mib_per_process": {str(p): round(rss_kib(p) / 1024, 1) for p in pids}}


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time used so far by these processes (from /proc/<pid>/stat)."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    return inodes


def _established_inodes(port: int) -> set[str]:
    """Inodes of ESTABLISHED server-side TCP sockets whose local port is `port`."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                if parts[3] == "01" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                    found.add(parts[9])
    return found


def connection_spread(proc: Proc, port: int) -> dict[int, int]:
    """How many established client connections each process of the tree holds right now."""
    established = _established_inodes(port)
    pids = proc.tree()
    spread = {}
    for pid in pids:
        if pid == proc.pid and len(pids) > 1:
            continue  # the gunicorn master accepts nothing
        spread[pid] = len(_socket_inodes(pid) & established)
    return spread

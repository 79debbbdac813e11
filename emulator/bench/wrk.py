"""Drive a target with `wrk` (POST bodies from Lua) and read its figures back as JSON."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

RESULT_MARK = "BENCH-JSON "

# The `done` hook shared by every script: percentiles in microseconds, errors by kind,
# and how many requests found no fresh token left (must be 0 for an honest figure).
DONE = r"""
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  thread:set("nthreads", 0)
  table.insert(threads, thread)
end
function done(summary, latency, requests)
  local starved, last = 0, -1
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  for _, t in ipairs(threads) do
    starved = starved + (t:get("starved") or 0)
    local used = t:get("used") or 0
    if used > 0 then last = math.max(last, (used - 1) * nthreads + t:get("id")) end
  end
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"mean_us":%.1f,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"starved":%d,' ..
    '"last_token_index":%d}\n',
    "BENCH-JSON ", summary.requests, summary.duration, summary.bytes, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout, starved, last))
end
"""

STATIC_POST = r"""
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-App-Key"] = os.getenv("BENCH_APP_KEY")
wrk.headers["X-App-Secret"] = os.getenv("BENCH_APP_SECRET")
starved = 0
""" + DONE

# Each wrk thread takes every line of the token file (after BENCH_SKIP, at most BENCH_LIMIT)
# whose index matches its id, so threads never share a token and every request validates a
# token never validated before. A thread out of tokens counts `starved` requests and, when
# BENCH_MARKER is set, drops a marker file so a count-bounded run can be stopped.
FRESH_TOKENS = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-App-Key"] = os.getenv("BENCH_APP_KEY")
wrk.headers["X-App-Secret"] = os.getenv("BENCH_APP_SECRET")
local bodies, n, i, marked = {}, 0, 0, false
starved, used = 0, 0
function init(args)
  local nthreads = tonumber(os.getenv("BENCH_THREADS"))
  local skip = tonumber(os.getenv("BENCH_SKIP") or "0")
  local limit = tonumber(os.getenv("BENCH_LIMIT") or "0")
  local k = 0
  for line in io.lines(os.getenv("BENCH_TOKENS")) do
    if k >= skip and (limit == 0 or k < skip + limit) and (k - skip) % nthreads == id then
      n = n + 1
      bodies[n] = '{"pass_token":"' .. line .. '"}'
    end
    k = k + 1
  end
end
function request()
  i = i + 1
  if i > n then
    starved = starved + 1
    local marker = os.getenv("BENCH_MARKER")
    if marker and not marked then
      io.open(marker .. "." .. id, "w"):close()
      marked = true
    end
    return wrk.format(nil, nil, nil, '{"pass_token":"exhausted"}')
  end
  used = i
  return wrk.format(nil, nil, nil, bodies[i])
end
""" + DONE


@dataclass(frozen=True)
class Load:
    """One wrk run: where, how hard, how long, with which script."""

    url: str
    connections: int = 32
    threads: int = 2
    duration_s: int = 10
    script: str = STATIC_POST
    env: tuple[tuple[str, str], ...] = ()
    timeout_s: int = 10


def wrk_path() -> str:
    path = shutil.which("wrk")
    if not path:
        raise RuntimeError("wrk is not installed: apt-get install -y wrk")
    return path


def run(load: Load, work_dir: Path) -> dict:
    """Run wrk once; return its figures (req/s, p50/p99 in ms, errors)."""
    if not load.url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]")):
        raise ValueError("only loopback targets may be load-tested")
    argv, env = command(load, work_dir)
    done = subprocess.run(argv, capture_output=True, text=True, env=env,
                          timeout=load.duration_s + load.timeout_s + 30)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            return summarise(json.loads(line[len(RESULT_MARK):]))
    raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-1500:]} {done.stderr[-1500:]}")


def command(load: Load, work_dir: Path) -> tuple[list[str], dict[str, str]]:
    script = work_dir / f"wrk-{hashlib.sha1(load.script.encode()).hexdigest()[:10]}.lua"
    script.write_text(load.script)
    argv = [wrk_path(), f"-t{load.threads}", f"-c{load.connections}", f"-d{load.duration_s}s",
            f"--timeout={load.timeout_s}s", "-s", str(script), load.url]
    return argv, {"PATH": "/usr/bin:/bin", "BENCH_THREADS": str(load.threads), **dict(load.env)}


def run_until_markers(argv: list[str], env: dict, markers: list[Path], max_seconds: float) -> None:
    """wrk always sleeps for its whole -d: stop it as soon as every thread wrote its marker."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + max_seconds + 5
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if all(m.exists() for m in markers):
                break
            time.sleep(0.05)  # polling for completion
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(10)


def summarise(raw: dict) -> dict:
    seconds = raw["duration_us"] / 1e6
    errors = raw["errors"]
    return {
        "requests": raw["requests"], "duration_s": round(seconds, 2),
        "rps": round(raw["requests"] / seconds, 1) if seconds else 0.0,
        "p50_ms": raw["p50_us"] / 1000, "p90_ms": raw["p90_us"] / 1000, "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000, "mean_ms": round(raw["mean_us"] / 1000, 3),
        "errors": errors, "error_count": sum(errors.values()), "starved": raw["starved"],
        "tokens_sent_upto": raw["last_token_index"] + 1,  # lines after BENCH_SKIP: every one sent so far
    }

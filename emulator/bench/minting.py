"""Mint pass tokens in bulk through `POST /_emulator/pass-tokens`, before any timed load.

wrk does the minting (a Lua `response` hook appends each token to a per-thread file): it
is an order of magnitude faster than a Python client on a 2-core machine."""

from __future__ import annotations

import json
from pathlib import Path

from .wrk import run_until_markers, wrk_path

MINT_SCRIPT = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("BENCH_MINT_BODY")
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
local out, wanted, got = nil, 0, 0
function init(args)
  wanted = tonumber(os.getenv("BENCH_PER_THREAD"))
  out = io.open(os.getenv("BENCH_OUT") .. "." .. id, "w")
end
function response(status, headers, body)
  if status == 201 and got < wanted then
    local token = string.match(body, '"pass_token":"([^"]+)"')
    if token then
      out:write(token, "\n")
      got = got + 1
    end
  end
  if got == wanted then
    out:close()
    io.open(os.getenv("BENCH_OUT") .. "." .. id .. ".done", "w"):close()
    got = got + 1
    wrk.thread:stop()
  end
end
"""


def mint_tokens(url: str, count: int, out: Path, work_dir: Path, *, app_key: str = "demo_app",
                ttl: int | None = None, threads: int = 2, connections: int = 16,
                max_seconds: int = 300) -> list[str]:
    """Mint `count` fresh tokens; write them one per line to `out` and return them."""
    per_thread = -(-count // threads)
    script = work_dir / "mint.lua"
    script.write_text(MINT_SCRIPT)
    body: dict[str, str | int] = {"app_key": app_key, "action": "login"}
    if ttl is not None:
        body["ttl"] = ttl
    env = {"PATH": "/usr/bin:/bin", "BENCH_MINT_BODY": json.dumps(body), "BENCH_PER_THREAD": str(per_thread),
           "BENCH_OUT": str(out)}
    argv = [wrk_path(), f"-t{threads}", f"-c{connections}", f"-d{max_seconds}s", "--timeout=10s",
            "-s", str(script), url.rstrip("/") + "/_emulator/pass-tokens"]
    run_until_markers(argv, env, [Path(f"{out}.{n}.done") for n in range(threads)], max_seconds)
    tokens: list[str] = []
    for n in range(threads):
        part = Path(f"{out}.{n}")
        if part.exists():
            tokens.extend(part.read_text().split())
            part.unlink()
        Path(f"{out}.{n}.done").unlink(missing_ok=True)
    tokens = list(dict.fromkeys(tokens))[:count]
    if len(tokens) < count:
        raise RuntimeError(f"minted only {len(tokens)} of {count} tokens through {url}")
    out.write_text("\n".join(tokens) + "\n")
    return tokens

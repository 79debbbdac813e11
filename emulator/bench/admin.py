"""The few control-plane calls the benchmark makes, over plain urllib (no extra dependency).

Where an endpoint is not there (a 404 or 405), the caller falls back or reports the figure
as not measured, so the benchmark keeps working while the control plane grows."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any


class Missing(Exception):
    """The emulator has no such control endpoint (yet)."""


def call(url: str, method: str = "GET", body: Any = None, timeout: float = 10.0) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:500].decode(errors="replace")
        if exc.code in (404, 405):
            raise Missing(f"{method} {url}: HTTP {exc.code}") from None
        raise RuntimeError(f"{method} {url}: HTTP {exc.code} {detail}") from None


def set_clock_offset(base: str, seconds: float) -> None:
    call(base + "/_emulator/clock", "PUT", {"offset": seconds})


def put_profile(base: str, profile: dict[str, Any]) -> dict[str, Any]:
    return call(base + "/_emulator/profile", "PUT", {"profile": profile})


def delete_profile(base: str) -> None:
    call(base + "/_emulator/profile", "DELETE")


def post_json(url: str, body: Any, headers: dict[str, str]) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def wait_quiet(base: str, *, quiet_s: float, timeout_s: float = 30.0, poll_s: float = 0.05,
               clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> bool:
    """Wait until the journal's latest id has not moved for `quiet_s`: requests still in flight
    when wrk stopped (a latency rule holds each for its delay) have answered. False if it never
    settled within `timeout_s`."""
    def latest_id() -> Any:
        return call(base + "/_emulator/requests?limit=1").get("latest_id")

    latest = latest_id()
    started = since = clock()
    while clock() - since < quiet_s:
        if clock() - started > timeout_s:
            return False
        sleep(poll_s)
        if (now := latest_id()) != latest:
            latest, since = now, clock()
    return True

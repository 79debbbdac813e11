"""Per-app rate limits as real shared state: a sliding-window counter of requests per minute.

Counted with the store's atomic `incr` under one key per app and minute, so every worker and
replica shares the budget and no store needs anything new. The estimate for the last 60 s is
`previous_window * (1 - elapsed/60) + current_window`; a refused request gives its count
back, so the limit throttles, it does not lock an app out. Time is the virtual clock's."""

from __future__ import annotations

import math

from ..errors import ErrorCode, RequestError
from ..store.base import Store
from .apps import App

WINDOW_S = 60.0
MAX_RETRY_AFTER_S = 120


def check_rate_limit(store: Store, app: App, now: float) -> None:
    """Count one request of `app`; raise rate_limit_exceeded (with retry_after) past its limit."""
    limit = app.rate_limit
    if limit is None:
        return
    window = math.floor(now / WINDOW_S)
    elapsed = now - window * WINDOW_S
    key = _key(app, window)
    current = store.incr(key, scope=app.app_key, expires_at=(window + 2) * WINDOW_S)
    previous = store.counter(_key(app, window - 1))
    estimate = previous * (1 - elapsed / WINDOW_S) + current
    if estimate <= limit:
        return
    store.incr(key, -1, scope=app.app_key)
    wait = retry_after(limit, previous, current - 1, elapsed)
    raise RequestError(ErrorCode.RATE_LIMIT_EXCEEDED,
                       f"app {app.app_key} allows {limit} requests/minute; about {estimate - 1:.1f} in the last "
                       f"60 s (retry in {wait} s)", retry_after=wait)


def retry_after(limit: int, previous: int, current: int, elapsed: float) -> int:
    """Whole seconds until one more request fits under the sliding-window estimate."""
    if limit < 1:
        return int(WINDOW_S)
    if current + 1 <= limit:  # this window has room: wait for the previous window's weight to fade
        t = WINDOW_S * (1 - (limit - 1 - current) / previous) - elapsed if previous else 0.0
    else:  # this window alone is full: wait into the next one until its weight fades
        t = (WINDOW_S - elapsed) + WINDOW_S * (1 - (limit - 1) / current)
    return max(1, min(MAX_RETRY_AFTER_S, math.ceil(t)))


def _key(app: App, window: int) -> str:
    return f"ratelimit:{app.app_key}:{window}"

"""Journal queries in CAPTCHA terms (docs/compatibility.md §14): filters, and a bounded wait for a match.

Pure: no Flask; the wait takes its sleep and monotonic clock as arguments so tests drive it
without real time passing."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, get_args

from ..errors import ErrorCode, RequestError
from .journal import Journal, JournalQuery, Outcome, token_fingerprint

DEFAULT_LIMIT = 100
DEFAULT_WAIT_S = 10.0
MAX_WAIT_S = 60.0
POLL_INTERVAL_S = 0.05
MAX_ID = 2**63 - 1  # the largest id a store can hold (SQLite INTEGER)
_TEXT_FILTERS = ("endpoint", "app_key", "token", "token_id", "outcome", "code")
_INTEGER = re.compile(r"-?[0-9]{1,30}")  # ASCII digits only (longer is past MAX_ID anyway)
OUTCOMES = tuple(sorted(get_args(Outcome)))


@dataclass(frozen=True)
class JournalFilter:
    """Which journal entries a caller wants: every given field must match; newest-first window
    when `after` is 0, else the oldest entries with an id above `after`."""

    endpoint: str | None = None
    app_key: str | None = None
    token: str | None = None
    token_id: str | None = None
    outcome: str | None = None
    code: str | None = None
    after: int = 0
    limit: int = DEFAULT_LIMIT

    @classmethod
    def from_args(cls, args: Mapping[str, str], *, max_limit: int,
                  extra: tuple[str, ...] = ()) -> JournalFilter:
        """Parse query-string arguments; unknown names and bad numbers are a clear invalid_request."""
        known = set(_TEXT_FILTERS) | {"after", "limit", "admin_token", *extra}
        unknown = sorted(set(args) - known)
        if unknown:
            raise RequestError(ErrorCode.INVALID_REQUEST,
                               f"unknown filter(s) {', '.join(unknown)}; "
                               f"known: {', '.join(sorted(known - {'admin_token'}))}")
        values: dict[str, Any] = {name: args[name].strip() for name in _TEXT_FILTERS if args.get(name, "").strip()}
        if "outcome" in values and values["outcome"] not in OUTCOMES:  # else a typo silently finds nothing
            raise RequestError(ErrorCode.INVALID_REQUEST,
                               f"outcome {values['outcome'][:32]!r} is not one of {', '.join(OUTCOMES)}")
        values["after"] = _int_arg(args, "after", 0, minimum=0)
        values["limit"] = min(_int_arg(args, "limit", DEFAULT_LIMIT, minimum=1), max_limit)
        return cls(**values)

    def since(self, after: int) -> JournalFilter:
        return replace(self, after=after)


def find(journal: Journal, f: JournalFilter) -> list[dict[str, Any]]:
    """Matching entries, oldest first. outcome/code are filtered here over the whole bounded
    journal (the store indexes only endpoint, app and token)."""
    post = [(key, value) for key, value in (("outcome", f.outcome), ("code", f.code)) if value]
    limit = journal.capacity if post else f.limit
    rows = journal.query(JournalQuery(after_id=f.after, endpoint=f.endpoint, app_key=f.app_key,
                                      token_fp=token_fingerprint(f.token) if f.token else None,
                                      token_id=f.token_id, limit=limit))
    if not post:
        return rows
    rows = [r for r in rows if all(r.get(key) == value for key, value in post)]
    return rows[:f.limit] if f.after else rows[-f.limit:]


def page_cursor(journal: Journal, f: JournalFilter, rows: list[dict[str, Any]], before: int) -> int:
    """The `latest_id` of an answer: the number a poller passes back as `after` to get exactly
    what it has not seen. `before` is the journal's number read before the search began.

    Every matching entry up to it is in this answer or an earlier one: a full page stops at its
    last (newest) entry, as more may follow it (a wait without `after` searches on from its own
    cursor, oldest first); otherwise the search saw everything up to `before` and up to the newest
    entry it returned. The journal's number read after the search could count entries that
    arrived meanwhile and were never searched. A smaller number than `before` now means the
    journal was reset (ids restart at 1): that number is the answer."""
    now = journal.latest_id()
    if now < before:
        return now
    if rows and len(rows) >= f.limit:
        return int(rows[-1]["id"])
    return max([before, *(int(row["id"]) for row in rows)])


def wait_for(journal: Journal, f: JournalFilter, timeout: float, *, interval: float = POLL_INTERVAL_S,
             sleep: Callable[[float], None] | None = None,
             monotonic: Callable[[], float] = time.monotonic) -> list[dict[str, Any]]:
    """Wait until a matching entry exists or `timeout` passes ([] then).

    The journal lives in the store, so a request answered by any worker is seen here. While
    nothing new arrives a wait costs at most one read of the journal's sequence number per
    `interval`, shared with the other waits of the process (a waiting request holds a greenlet,
    not a thread); only when the number moved does it query again, and then only the entries added
    since. The number moves in the same atomic write as the entries it numbers, so an entry at or
    below a number read is visible to the next query; a shared number is at most half an `interval` old,
    which can only make a search start earlier, never miss an entry."""
    sleep = sleep or _sleep
    deadline = monotonic() + timeout
    seen = journal.latest_id(interval / 2, now=monotonic())  # read before the first query: it covers up to here
    rows = find(journal, f)
    while not rows:
        remaining = deadline - monotonic()
        if remaining <= 0:
            return []
        sleep(min(interval, remaining))
        latest = journal.latest_id(interval / 2, now=monotonic())  # a wait's own last read is always older
        if latest == seen:
            continue
        cursor = max(f.after, seen) if latest > seen else f.after  # lower: a reset restarted the numbers
        seen = latest
        rows = find(journal, f.since(cursor))
    return rows


def _sleep(seconds: float) -> None:
    time.sleep(seconds)  # looked up per call: a gevent worker patches it after import


def parse_timeout(raw: str | None, *, default: float = DEFAULT_WAIT_S, maximum: float = MAX_WAIT_S) -> float:
    """A wait's timeout in seconds: a finite number from 0 to `maximum`."""
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise RequestError(ErrorCode.INVALID_REQUEST, f"timeout {raw[:32]!r} is not a number of seconds") from None
    if not math.isfinite(value) or not 0 <= value <= maximum:
        raise RequestError(ErrorCode.INVALID_REQUEST, f"timeout must be between 0 and {maximum:g} seconds")
    return value


def _int_arg(args: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = args.get(name, "").strip()
    if not raw:
        return default
    if not _INTEGER.fullmatch(raw):  # int() would also take "+5", "1_0" and other scripts' digits
        raise RequestError(ErrorCode.INVALID_REQUEST, f"{name} {raw[:32]!r} is not an integer")
    value = int(raw)
    if value < minimum:
        raise RequestError(ErrorCode.INVALID_REQUEST, f"{name} must be at least {minimum}")
    if value > MAX_ID:
        raise RequestError(ErrorCode.INVALID_REQUEST, f"{name} must be at most {MAX_ID}")
    return value

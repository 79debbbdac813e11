"""Passive diagnosis of "captcha incomplete or invalid": group what the journal saw into findings.

Each finding has a fixed id, a count, example journal ids and tokens, the likely cause, what to
inspect and the fix. Pure (no Flask): the caller passes the journal entries (oldest first), the
virtual `now` and each app's pass-token lifetime; time comes only from the journal's virtual
timestamps and `now`."""

from __future__ import annotations

import bisect
import ipaddress
import math
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..errors import ErrorCode, RequestError
from .challenges import CHALLENGE_TTL
from .clock import iso
from .findings import RULES, RULES_BY_ID, Rule
from .journal import VALIDATE_ENDPOINTS, Journal, JournalQuery
from .timeline import SOLVE_ENDPOINTS, is_failing

DUPLICATE_WINDOW_S = 2.0  # a second validate of one token this soon, from the same caller, is a double submit
RETRY_WINDOW_S = 30.0  # a faulted request followed within this by the same caller's same request was retried
MAX_EXAMPLES = 5
CREDENTIAL_ERRORS = (ErrorCode.INVALID_APP_KEY.value, ErrorCode.INVALID_APP_SECRET.value)
SERVER_TOKEN_ERRORS = tuple(code.value for code in ErrorCode if code.value.startswith("server_token_"))

INTERNAL_NETS = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                                         "100.64.0.0/10", "fc00::/7"))
Lifetime = Callable[[str | None], float]  # app key -> its pass-token lifetime in seconds


@dataclass(frozen=True)
class Hit:
    rule: str
    entry: dict[str, Any]
    note: str


@dataclass
class Index:
    """The journal entries, looked up the ways the detectors need (each lookup near-linear, so a
    large --journal-size stays cheap)."""

    entries: list[dict[str, Any]]
    by_token: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    solves: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    inits: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))  # by app, by time
    init_times: dict[str, list[float]] = field(default_factory=dict)
    following: dict[int, dict[str, Any]] = field(default_factory=dict)  # entry id -> next entry of the same request

    def __post_init__(self) -> None:
        for entry in self.entries:
            if entry.get("token_id"):
                self.by_token[entry["token_id"]].append(entry)
            if entry.get("endpoint") in SOLVE_ENDPOINTS and entry.get("challenge_id"):
                self.solves[entry["challenge_id"]].append(entry)
            if entry.get("endpoint") == "challenge_init" and not is_failing(entry):
                self.inits[entry.get("app_key") or ""].append(entry)
        last: dict[tuple, dict[str, Any]] = {}
        for entry in self.entries:  # oldest first: link each entry to the next one of the same request
            key = _request_key(entry)
            if key in last:
                self.following[last[key].get("id", 0)] = entry
            last[key] = entry
        for app_key, inits in self.inits.items():
            inits.sort(key=_ts)
            self.init_times[app_key] = [_ts(i) for i in inits]

    def of(self, endpoint: str | tuple[str, ...]) -> Iterator[dict[str, Any]]:
        names = (endpoint,) if isinstance(endpoint, str) else endpoint
        return (e for e in self.entries if e.get("endpoint") in names)

    def origin(self, token_id: str | None) -> dict[str, Any] | None:
        """The solve (or control-plane mint) that produced a token."""
        for entry in self.by_token.get(token_id or "", []):
            if entry.get("endpoint") in (*SOLVE_ENDPOINTS, "mint") and not is_failing(entry):
                return entry
        return None

    def validates(self, token_id: str | None) -> list[dict[str, Any]]:
        return [e for e in self.by_token.get(token_id or "", []) if e.get("endpoint") in VALIDATE_ENDPOINTS]

    def inits_before(self, app_key: str | None, ts: float, window: float) -> list[dict[str, Any]]:
        """The app's successful inits in [ts - window, ts], oldest first."""
        inits, times = self.inits.get(app_key or "", []), self.init_times.get(app_key or "", [])
        return inits[bisect.bisect_left(times, ts - window):bisect.bisect_right(times, ts)]

    def next_same(self, entry: dict[str, Any]) -> dict[str, Any] | None:
        """The next entry of the same request (endpoint and token, else endpoint, caller and app)."""
        return self.following.get(entry.get("id", 0))


def _request_key(entry: dict[str, Any]) -> tuple:
    if entry.get("token_fp"):
        return entry.get("endpoint"), "token", entry["token_fp"]
    return entry.get("endpoint"), "caller", entry.get("caller_ip"), entry.get("app_key")


def journal_entries(journal: Journal) -> list[dict[str, Any]]:
    """The whole bounded journal, oldest first (the one place diagnosis reads it)."""
    return journal.query(JournalQuery(limit=journal.capacity))


def diagnose(entries: list[dict[str, Any]], *, now: float, lifetime: Lifetime, app_key: str | None = None,
             since: float | None = None) -> list[dict[str, Any]]:
    """The findings, in the fixed order of RULES; an empty list for a quiet (or healthy) system."""
    ix = Index(entries)
    hits: dict[str, list[Hit]] = defaultdict(list)
    for detector in DETECTORS:
        for hit in detector(ix, now, lifetime):
            if _in_scope(hit.entry, app_key, since):
                hits[hit.rule].append(hit)
    return [finding(RULES_BY_ID[rule.id], hits[rule.id]) for rule in RULES if hits[rule.id]]


def finding(rule: Rule, hits: list[Hit]) -> dict[str, Any]:
    examples = [{"journal_id": h.entry.get("id"), "at": iso(h.entry.get("virtual_ts")),
                 "endpoint": h.entry.get("endpoint"), "app_key": h.entry.get("app_key"),
                 "token_id": h.entry.get("token_id"), "token_fp": h.entry.get("token_fp"), "note": h.note}
                for h in hits[-MAX_EXAMPLES:]]
    tokens = list(dict.fromkeys(h.entry["token_id"] for h in hits if h.entry.get("token_id")))
    return {"id": rule.id, "title": rule.title, "count": len(hits),
            "journal_ids": [h.entry.get("id") for h in hits][-MAX_EXAMPLES:], "tokens": tokens[-MAX_EXAMPLES:],
            "examples": examples, "cause": rule.cause, "inspect": rule.inspect, "fix": rule.fix}


def parse_since(raw: str | None) -> float | None:
    """`since`: seconds since the epoch (virtual time) or an ISO-8601 UTC time; None when absent."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    try:
        value = float(text)
    except ValueError:
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
            value = (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()  # no zone: UTC
        except ValueError:
            raise RequestError(ErrorCode.INVALID_REQUEST, f"since {text[:40]!r} is neither epoch seconds "
                                                          "nor an ISO-8601 time like 2026-12-02T10:00:00Z") from None
    if not math.isfinite(value):
        raise RequestError(ErrorCode.INVALID_REQUEST, "since must be a finite number of seconds")
    return value


def _in_scope(entry: dict[str, Any], app_key: str | None, since: float | None) -> bool:
    if app_key and entry.get("app_key") != app_key:
        return False
    return since is None or float(entry.get("virtual_ts") or 0.0) >= since


def _ts(entry: dict[str, Any]) -> float:
    return float(entry.get("virtual_ts") or 0.0)


def _expiry(entry: dict[str, Any], lifetime: Lifetime) -> float:
    if entry.get("token_expires_at") is not None:
        return float(entry["token_expires_at"])
    return _ts(entry) + lifetime(entry.get("app_key"))


# --- incomplete ----------------------------------------------------------------------
def _abandoned(ix: Index, now: float, lifetime: Lifetime) -> Iterator[Hit]:
    for init in ix.of("challenge_init"):
        cid = init.get("challenge_id")
        end = _ts(init) + CHALLENGE_TTL
        if not cid or is_failing(init) or now < end:
            continue
        solves = ix.solves.get(cid, [])
        if any(not is_failing(s) and _ts(s) < end for s in solves):
            continue
        late = f"; a solve was tried {round(_ts(solves[0]) - _ts(init))} s after init ({solves[0].get('code')})" \
            if solves else ""
        page = init.get("page") or "unknown"
        yield Hit("challenge_abandoned", init, f"challenge {cid} opened from {init.get('caller_ip')} on page "
                                               f"{page}: not solved within {CHALLENGE_TTL} s{late}")


def _never_validated(ix: Index, now: float, lifetime: Lifetime) -> Iterator[Hit]:
    for solve in ix.of(SOLVE_ENDPOINTS):
        expiry = _expiry(solve, lifetime)
        if is_failing(solve) or not solve.get("token_id") or now < expiry or ix.validates(solve["token_id"]):
            continue
        yield Hit("token_never_validated", solve, f"{solve.get('token_kind') or 'pass'} token solved from "
                                                  f"{solve.get('caller_ip')}, never sent to validate within its "
                                                  f"{round(expiry - _ts(solve))} s lifetime")


def _before_token(ix: Index, now: float, lifetime: Lifetime) -> Iterator[Hit]:
    for v in ix.of(VALIDATE_ENDPOINTS):
        if v.get("code") != ErrorCode.EMPTY_TOKEN.value:
            continue
        pending = [i for i in ix.inits_before(v.get("app_key"), _ts(v), CHALLENGE_TTL) if not _solved_by(ix, i, _ts(v))]
        if pending:
            init = pending[-1]
            note = (f"empty pass_token {round(_ts(v) - _ts(init), 3)} s after challenge init #{init.get('id')} "
                    f"({init.get('challenge_id')}), which was not solved yet")
        else:
            note = (f"empty pass_token with no challenge init of {v.get('app_key')} just before: "
                    "was the widget rendered?")
        yield Hit("submitted_before_token", v, note)


def _solved_by(ix: Index, init: dict[str, Any], ts: float) -> bool:
    return any(not is_failing(s) and _ts(s) <= ts for s in ix.solves.get(init.get("challenge_id") or "", []))


def _server_token(ix: Index, now: float, lifetime: Lifetime) -> Iterator[Hit]:
    for init in ix.of("challenge_init"):
        if init.get("code") in SERVER_TOKEN_ERRORS:
            yield Hit("server_token_rejected", init, f"{init['code']} at init from {init.get('caller_ip')}: "
                                                     f"{init.get('reason')}")


# --- invalid -------------------------------------------------------------------------
def _expired(ix: Index, now: float, lifetime: Lifetime) -> Iterator[Hit]:
    for v in ix.of(VALIDATE_ENDPOINTS):
        if v.get("code") != ErrorCode.TOKEN_EXPIRED.value or v.get("fault"):
            continue
        origin = ix.origin(v.get("token_id"))
        if origin is None:
            yield Hit("token_expired_before_validation", v, v.get("reason") or "token expired")
            continue
        age, life = _ts(v) - _ts(origin), _expiry(origin, lifetime) - _ts(origin)
        yield Hit("token_expired_before_validation", v,
                  f"validated {round(age)} s after the solve, lifetime {round(life)} s "
                  f"({round(age - life)} s too late): refresh the challenge before submit")


def _repeats(ix: Index, now: float, lifetime: Lifetime) -> Iterator[Hit]:
    for token_id in ix.by_token:
        attempts = [v for v in ix.validates(token_id) if not v.get("keep_token")]
        for prev, cur in zip(attempts, attempts[1:], strict=False):
            yield _repeat(prev, cur)


def _repeat(prev: dict[str, Any], cur: dict[str, Any]) -> Hit:
    gap = round(_ts(cur) - _ts(prev), 3)
    first = f"#{prev.get('id')} ({prev.get('outcome')}{' ' + prev['code'] if prev.get('code') else ''})"
    if prev.get("caller_ip") != cur.get("caller_ip"):
        return Hit("token_replayed", cur, f"validated from {cur.get('caller_ip')} {gap} s after {first} "
                                          f"from {prev.get('caller_ip')}")
    if is_failing(prev) or prev.get("fault"):  # a faulted answer may have been late, lost or wrong
        return Hit("retry_with_same_token", cur, f"retried {gap} s after the failed attempt {first}")
    if gap <= DUPLICATE_WINDOW_S:
        return Hit("duplicate_submit", cur, f"submitted again {gap} s after {first} from the same caller")
    return Hit("retry_with_same_token", cur, f"sent again {gap} s after the accepted attempt {first}")


def _credentials(ix: Index, now: float, lifetime: Lifetime) -> Iterator[Hit]:
    for entry in ix.entries:
        if entry.get("code") in CREDENTIAL_ERRORS:
            note = f"{entry.get('endpoint')}: {entry['code']} — {entry.get('reason')}"
            yield Hit("credentials_mismatch", entry, note)


def _other_app(ix: Index, now: float, lifetime: Lifetime) -> Iterator[Hit]:
    for v in ix.of(VALIDATE_ENDPOINTS):
        if v.get("code") != ErrorCode.INVALID_TOKEN.value:
            continue
        origin = ix.origin(v.get("token_id"))
        if origin is not None and origin.get("app_key") != v.get("app_key"):
            yield Hit("token_of_other_app", v, f"token of app {origin.get('app_key')} (journal #{origin.get('id')}) "
                                               f"validated with app {v.get('app_key')}'s credentials")
        elif origin is None and (v.get("reason") or "").startswith("token was minted for app"):
            yield Hit("token_of_other_app", v, v["reason"])


def _proxy_ip(ix: Index, now: float, lifetime: Lifetime) -> Iterator[Hit]:
    for v in ix.of(VALIDATE_ENDPOINTS):
        sent = v.get("client_ip")
        origin = ix.origin(v.get("token_id"))
        if not sent or origin is None or origin.get("endpoint") not in SOLVE_ENDPOINTS:
            continue
        solver = origin.get("caller_ip")
        if sent == solver:
            continue
        kind = "a private or loopback address" if _internal(sent) and not _internal(solver) else "another address"
        yield Hit("client_ip_looks_like_proxy", v, f"client_ip {sent} sent at validate is {kind}; "
                                                   f"the challenge was solved from {solver}")


def _internal(ip: str | None) -> bool:
    """A proxy-side address: loopback, link-local, RFC 1918, carrier-grade NAT or IPv6 ULA.
    (Not `is_private`, which also counts the documentation ranges real examples use.)"""
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return False
    return address.is_loopback or address.is_link_local or any(address in net for net in INTERNAL_NETS
                                                                if net.version == address.version)


# --- outages -------------------------------------------------------------------------
def _faults(ix: Index, now: float, lifetime: Lifetime) -> Iterator[Hit]:
    faulted = [e for e in ix.entries if e.get("fault")]
    for entry in faulted:
        retried = _retried(ix, entry)
        yield Hit("upstream_faults", entry, f"{entry.get('endpoint')} broken by {entry['fault']} "
                                            f"(status {entry.get('status')}); "
                                            + ("the caller retried" if retried else "no retry seen"))


def _retried(ix: Index, entry: dict[str, Any]) -> bool:
    following = ix.next_same(entry)
    return following is not None and 0 <= _ts(following) - _ts(entry) <= RETRY_WINDOW_S


DETECTORS = (_abandoned, _never_validated, _before_token, _server_token, _expired, _repeats, _credentials,
             _other_app, _proxy_ip, _faults)

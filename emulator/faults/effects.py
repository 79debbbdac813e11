"""Fault effects: what happens to a request when a rule fires, and the strict parsing of `effect:`.

Each effect key acts only on some endpoints (APPLIES_TO); a rule that names an endpoint where
its effect cannot act is refused, and a rule without `match.endpoint` gets those endpoints."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from ..domain.journal import VALIDATE_ENDPOINTS
from ..errors import ErrorCode
from .reader import Reader, type_name

ENDPOINTS = ("validate", "backup_validate", "issue", "challenge_init", "challenge_solve", "loader", "sdk",
             "moderation", "challenge_offline")
ASSETS = ("loader", "sdk")
API = tuple(e for e in ENDPOINTS if e not in ASSETS)
VALIDATES = VALIDATE_ENDPOINTS
MAIN = ("validate", "issue", "challenge_init", "challenge_solve", "moderation")  # the main host, not the backup
TOKEN_RESULTS = (ErrorCode.TOKEN_EXPIRED, ErrorCode.TOKEN_CONSUMED, ErrorCode.INVALID_TOKEN, ErrorCode.BINDING_MISMATCH)
TOKEN_LEVEL = TOKEN_RESULTS + (ErrorCode.EMPTY_TOKEN,)
ConnectionKind = Literal["reset", "hang", "truncated_body", "malformed_json", "slow_body"]
LatencyKind = Literal["fixed", "uniform", "lognormal"]
CONNECTIONS: tuple[ConnectionKind, ...] = get_args(ConnectionKind)
BODIES = ("json", "html", "empty")
FRAMING_HEADERS = ("content-length", "transfer-encoding", "connection")
MAX_LATENCY_MS = 600_000.0
MAX_HANG_S = 3600.0
DEFAULT_HANG_S = 30.0

# Where each effect key can act; a rule without match.endpoint gets the intersection.
APPLIES_TO: dict[str, tuple[str, ...]] = {
    "latency_ms": ENDPOINTS, "status": ENDPOINTS, "connection": ENDPOINTS, "error": API,
    "token_result": VALIDATES, "degraded": ("challenge_solve",), "main_down": MAIN, "clock_skew_s": API,
}
OUTCOMES = ("status", "error", "token_result", "connection", "degraded", "main_down")
INHERENTLY_PROCESSED = ("truncated_body", "malformed_json", "slow_body")  # they need the real answer


@dataclass(frozen=True)
class Latency:
    """`latency_ms`: a fixed number, {min, max} uniform, or {median, p99, max} lognormal (ms)."""

    kind: LatencyKind
    fixed: float = 0.0
    min: float = 0.0
    max: float = 0.0
    median: float = 0.0
    p99: float = 0.0


@dataclass(frozen=True)
class Connection:
    """`connection`: a socket-level fault and its knobs."""

    kind: ConnectionKind
    max_s: float = DEFAULT_HANG_S  # hang: give up (close, no answer) after this long
    chunks: int = 5  # slow_body: the body is sent in this many pieces
    chunk_delay_ms: float = 200.0  # slow_body: pause before each piece after the first
    fraction: float = 0.5  # truncated_body / malformed_json: how much of the body is sent


@dataclass(frozen=True)
class Effect:
    latency: Latency | None = None
    processed: bool = False  # handle the request for real first, then delay / break the answer
    status: int | None = None
    body: str = "json"
    headers: tuple[tuple[str, str], ...] = ()
    error: ErrorCode | None = None
    retry_after: int | None = None
    token_result: ErrorCode | None = None
    connection: Connection | None = None
    degraded: bool = False
    main_down: bool = False
    clock_skew_s: float | None = None

    def describe(self) -> str:
        """A short human summary for the journal's reason and the control plane."""
        parts = []
        if self.latency:
            parts.append(f"latency {self.latency.kind}")
        if self.processed:
            parts.append("after processing")
        if self.status is not None:
            parts.append(f"HTTP {self.status} {self.body if self.body in BODIES else 'text'} body")
        if self.error:
            parts.append(f"error {self.error.value}")
        if self.token_result:
            parts.append(f"token_result {self.token_result.value}")
        if self.connection:
            parts.append(f"connection {self.connection.kind}")
        if self.degraded:
            parts.append("degraded dg_ tokens")
        if self.main_down:
            parts.append("main API down")
        if self.clock_skew_s:
            parts.append(f"clock skew {self.clock_skew_s:+g} s")
        return ", ".join(parts)


_EFFECT_KEYS = {"latency_ms", "processed", "status", "body", "headers", "error", "retry_after", "token_result",
                "connection", "degraded", "main_down", "clock_skew_s"}


def parse_effect(r: Reader, raw: Any, path: str) -> tuple[Effect, dict[str, tuple[str, ...]]]:
    e = r.mapping(raw, path, _EFFECT_KEYS)
    if not e:
        r.fail(path, "empty: give latency_ms and/or one outcome (" + ", ".join(OUTCOMES) + ")")
    outcomes = [k for k in OUTCOMES if k in e]
    if len(outcomes) > 1:
        r.fail(f"{path}.{outcomes[1]}", f"one outcome per rule: already has {outcomes[0]} "
                                        "(combine latency_ms with one outcome; split the rest into rules)")
    values: dict[str, Any] = {}
    if "latency_ms" in e:
        values["latency"] = _latency(r, e["latency_ms"], f"{path}.latency_ms")
    if "status" in e:
        values["status"] = r.integer(e["status"], f"{path}.status", minimum=200, maximum=599)
    for key in ("body", "headers"):
        if key in e and "status" not in e and not (key == "headers" and ("error" in e or "main_down" in e)):
            r.fail(f"{path}.{key}", "needs status" + (", error or main_down" if key == "headers" else ""))
    if "body" in e:
        values["body"] = r.string(e["body"], f"{path}.body")
    if "headers" in e:
        values["headers"] = _headers(r, e["headers"], f"{path}.headers")
    if "error" in e:
        values["error"] = _error_code(r, e["error"], f"{path}.error")
    if "retry_after" in e:
        if "status" not in e and "error" not in e:
            r.fail(f"{path}.retry_after", "needs status or error")
        values["retry_after"] = r.integer(e["retry_after"], f"{path}.retry_after", minimum=0, maximum=86_400)
    if "token_result" in e:
        codes = [c.value for c in TOKEN_RESULTS]
        values["token_result"] = ErrorCode(r.choice(e["token_result"], f"{path}.token_result", codes))
    if "connection" in e:
        values["connection"] = _connection(r, e["connection"], f"{path}.connection")
    for flag in ("degraded", "main_down"):
        if flag in e:
            if r.boolean(e[flag], f"{path}.{flag}") is not True:
                r.fail(f"{path}.{flag}", "only true means something (leave the key out otherwise)")
            values[flag] = True
    if "clock_skew_s" in e:
        values["clock_skew_s"] = r.number(e["clock_skew_s"], f"{path}.clock_skew_s", minimum=-315_360_000,
                                          maximum=315_360_000)
    if values.get("error") in TOKEN_LEVEL:
        r.fail(f"{path}.error", f"{values['error'].value} is a token-level answer: use token_result")
    connection = values.get("connection")
    if "processed" in e:
        values["processed"] = r.boolean(e["processed"], f"{path}.processed")
        inherent = [k for k in ("token_result", "degraded", "clock_skew_s") if k in e]
        if connection and connection.kind in INHERENTLY_PROCESSED:
            inherent.append(f"connection {connection.kind}")
        if values["processed"] and inherent:
            r.fail(f"{path}.processed", f"{inherent[0]} always acts on the processed request: leave processed out")
        if values["processed"] and "latency_ms" not in e and not any(k in e for k in OUTCOMES):
            r.fail(f"{path}.processed", "needs latency_ms or an outcome to apply after processing")
    applies = {k: APPLIES_TO[k] for k in APPLIES_TO if k in e}
    return Effect(**values), applies


def _latency(r: Reader, raw: Any, path: str) -> Latency:
    if not isinstance(raw, Mapping):
        return Latency("fixed", fixed=r.number(raw, path, minimum=0, maximum=MAX_LATENCY_MS))
    keys = set(raw)
    if keys == {"min", "max"}:
        low = r.number(raw["min"], f"{path}.min", minimum=0, maximum=MAX_LATENCY_MS)
        high = r.number(raw["max"], f"{path}.max", minimum=0, maximum=MAX_LATENCY_MS)
        if high < low:
            r.fail(f"{path}.max", f"must be >= min ({low:g})")
        return Latency("uniform", min=low, max=high)
    if keys == {"median", "p99", "max"}:
        median = r.number(raw["median"], f"{path}.median", minimum=0, maximum=MAX_LATENCY_MS, exclusive=True)
        p99 = r.number(raw["p99"], f"{path}.p99", minimum=0, maximum=MAX_LATENCY_MS)
        if p99 < median:
            r.fail(f"{path}.p99", f"must be >= median ({median:g})")
        high = r.number(raw["max"], f"{path}.max", minimum=0, maximum=MAX_LATENCY_MS)
        if high < p99:
            r.fail(f"{path}.max", f"must be >= p99 ({p99:g})")
        return Latency("lognormal", max=high, median=median, p99=p99)
    unknown = sorted(str(k) for k in keys - {"min", "max", "median", "p99"})
    if unknown:
        r.fail(f"{path}.{unknown[0]}", "unknown key (known: min, max | median, p99, max)")
    missing = ({"min", "max"} - keys) if "min" in keys else ({"median", "p99", "max"} - keys)
    r.fail(f"{path}.{sorted(missing)[0]}", "required: latency_ms is a number, {min, max} or {median, p99, max}")
    raise AssertionError("unreachable")


def _connection(r: Reader, raw: Any, path: str) -> Connection:
    if isinstance(raw, str) or not isinstance(raw, Mapping):
        return Connection(cast(ConnectionKind, r.choice(raw, path, CONNECTIONS)))
    c = r.mapping(raw, path, {"kind", "max_s", "chunks", "chunk_delay_ms", "fraction"})
    if "kind" not in c:
        r.fail(f"{path}.kind", "required: one of " + ", ".join(CONNECTIONS))
    kind = cast(ConnectionKind, r.choice(c["kind"], f"{path}.kind", CONNECTIONS))
    knobs = {"max_s": "hang", "chunks": "slow_body", "chunk_delay_ms": "slow_body",
             "fraction": ("truncated_body", "malformed_json")}
    values: dict[str, Any] = {}
    for key, kinds in knobs.items():
        if key not in c:
            continue
        if kind not in (kinds if isinstance(kinds, tuple) else (kinds,)):
            r.fail(f"{path}.{key}", f"only for kind {' or '.join(kinds) if isinstance(kinds, tuple) else kinds}")
        where = f"{path}.{key}"
        if key == "max_s":
            values[key] = r.number(c[key], where, minimum=0, maximum=MAX_HANG_S, exclusive=True)
        elif key == "chunks":
            values[key] = r.integer(c[key], where, minimum=2, maximum=1000)
        elif key == "chunk_delay_ms":
            values[key] = r.number(c[key], where, minimum=0, maximum=60_000)
        else:
            values[key] = r.number(c[key], where, minimum=0, maximum=1, exclusive=True)
            if values[key] >= 1:
                r.fail(where, "must be < 1 (a fraction of the body)")
    conn = Connection(kind, **values)
    if kind == "slow_body" and (conn.chunks - 1) * conn.chunk_delay_ms > MAX_LATENCY_MS:
        r.fail(f"{path}.chunk_delay_ms", f"(chunks - 1) x chunk_delay_ms must stay within {MAX_LATENCY_MS / 1000:g} s")
    return conn


def _headers(r: Reader, raw: Any, path: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, Mapping):
        r.fail(path, f"expected a mapping of header names to values, got {type_name(raw)}")
    out = []
    for name, value in raw.items():
        if not isinstance(name, str) or not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
            r.fail(f"{path}.{name}", "not a valid header name")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            r.fail(f"{path}.{name}", f"expected a string, got {type_name(value)}")
        if name.lower() in FRAMING_HEADERS:
            r.fail(f"{path}.{name}", "frames the HTTP message: use connection (truncated_body, slow_body) instead")
        text = str(value)
        if "\n" in text or "\r" in text or not text.isascii():
            r.fail(f"{path}.{name}", "header values must be one line of ASCII")
        out.append((name, text))
    return tuple(out)


def _error_code(r: Reader, raw: Any, path: str) -> ErrorCode:
    value = r.string(raw, path)
    try:
        return ErrorCode(value)
    except ValueError:
        known = ", ".join(c.value for c in ErrorCode if c not in TOKEN_LEVEL)
        r.fail(path, f"unknown error code {value!r} (known: {known})")
        raise AssertionError("unreachable") from None

"""One structured log line per API request (`--log-format text|json`; off by default), secrets redacted.

Lines are built from an allow-list of journal fields: a journal entry never holds an app
secret or a whole token (only its fingerprint), and reasons are scrubbed of anything that
looks like a token, so a log can be pasted into an issue as is."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .settings import LogFormat

LOGGER_NAME = "captchala_emulator.requests"
FIELDS = ("id", "endpoint", "method", "path", "status", "outcome", "code", "reason", "app_key", "caller_ip",
          "client_ip", "token_kind", "token_fp", "action", "fault", "duration_ms", "worker_pid")
_TOKEN_LIKE = re.compile(r"\b(pt_|sct_|dg_|offline_)[A-Za-z0-9_\-.]{8,}")
_SECRET_LIKE = re.compile(r"(?i)(secret|password|authorization|admin_token)(['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+")


_TOKEN_MARKS = ("pt_", "sct_", "dg_", "offline_")
_SECRET_MARKS = ("secret", "password", "authorization", "admin_token")


def redact(text: str) -> str:
    """Shorten anything token-shaped to its prefix and hide `secret=...`-style values.

    A substring test comes first: the regexes run only on the rare text that could match
    (this runs on every field of every request)."""
    if any(mark in text for mark in _TOKEN_MARKS):
        text = _TOKEN_LIKE.sub(lambda m: m.group(0)[: len(m.group(1)) + 4] + "…", text)
    lowered = text.lower()
    if any(mark in lowered for mark in _SECRET_MARKS):
        text = _SECRET_LIKE.sub(lambda m: m.group(1) + m.group(2) + "[redacted]", text)
    return text


_URL_SECRET_PARAMS = ("password", "pass", "pwd", "secret", "token", "auth")


def redact_url(url: str) -> str:
    """A store URL as shown (banner, health, dashboard): `user:***@`, `?password=***`."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    secret_param = any(k.lower() in _URL_SECRET_PARAMS for k, _ in query)
    if parts.password is None and not secret_param:
        return url
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:***@{host}"
    shown = urlencode([(k, "***" if k.lower() in _URL_SECRET_PARAMS else v) for k, v in query], safe="*")
    return urlunsplit(parts._replace(netloc=netloc, query=shown))


def printable(text: str) -> str:
    """Control characters (CR, LF, ESC, ...) escaped as \\n, \\x1b: one log line stays one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _escape(char: str) -> str:
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char) or char.encode("unicode_escape").decode("ascii")


def log_fields(entry: dict[str, Any]) -> dict[str, Any]:
    """The allow-listed, redacted fields of a journal entry."""
    out: dict[str, Any] = {"ts": _iso(entry.get("ts"))}
    for key in FIELDS:
        value = entry.get(key)
        if value is None or value == "":
            continue
        out[key] = printable(redact(value)) if isinstance(value, str) else value
    return out


def format_line(entry: dict[str, Any], fmt: LogFormat) -> str:
    fields = log_fields(entry)
    if fmt == "json":
        return json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
    head = f"{fields['ts']} #{fields.get('id', '?')} {fields.get('method', '')} {fields.get('path', '')} " \
           f"{fields.get('status', '')} {fields.get('duration_ms', 0):.1f}ms"
    result = fields.get("outcome", "")
    if fields.get("code"):
        result += f" {fields['code']}"
    pairs = " ".join(f"{k}={fields[k]}" for k in ("app_key", "caller_ip", "token_kind", "token_fp", "fault")
                     if k in fields)
    why = f' reason="{fields["reason"]}"' if fields.get("reason") else ""
    return f"{head} {result} {pairs}{why}".rstrip()


class _CurrentStderr(logging.Handler):
    """Writes to whatever sys.stderr is at emit time (pytest swaps it per test to capture it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):  # a closed stream at shutdown: drop the line
            pass


def request_logger() -> logging.Logger:
    """The request logger; given its own stderr handler once, unless the user configured one."""
    logger = logging.getLogger(LOGGER_NAME)
    if not logger.handlers:
        logger.addHandler(_CurrentStderr())
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


def log_request(entry: dict[str, Any], fmt: LogFormat) -> None:
    """Emit the line for one journaled API request (built only if someone will read it).

    `--log-format off` (the default) costs nothing per request: the journal keeps every entry."""
    if fmt == "off":
        return
    logger = request_logger()
    if logger.isEnabledFor(logging.INFO):
        logger.info(format_line(entry, fmt))


def _iso(ts: Any) -> str:
    if not isinstance(ts, (int, float)):
        ts = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int((ts % 1) * 1000):03d}Z"

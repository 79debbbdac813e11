"""Request facts, read in one place: the runtime, the caller's IP, the body (parsed strictly for
the views, peeked at without side effects for fault matching and the journal).

Hostile input stops here: an oversized, undecodable, too deeply nested or badly chunked body is
an invalid_request, never a 5xx."""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Request, current_app, request
from werkzeug.exceptions import ClientDisconnected

from ..domain import json_codec
from ..errors import EmulatorError, ErrorCode, RequestError
from ..faults.engine import Facts
from ..faults.profile import VALIDATES
from ..runtime import Runtime

EXTENSION = "captchala_emulator"
MAX_BODY = 64 * 1024
BODY_KEY = "captchala_emulator.body"  # where raw_body keeps, in the request's WSGI environ, what it read
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
MAX_FORWARDED_SHOWN = 64
MAX_IP_TEXT = 64  # the longest IP text is 45 characters (IPv6 with an IPv4 tail), plus a zone id

try:  # gunicorn reports a broken chunked body with its own exception types
    from gunicorn.http.errors import ParseException as _ServerParseError
except ImportError:  # pragma: no cover - gunicorn is a dependency; the fallback never matches
    class _ServerParseError(Exception):  # type: ignore[no-redef]
        pass

BODY_READ_ERRORS = (OSError, ValueError, _ServerParseError)
_TOO_LARGE = f"body is larger than {MAX_BODY // 1024} KiB"


def runtime() -> Runtime:
    return current_app.extensions[EXTENSION]


# --- the caller ------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """The caller's IP and, when a forwarded value was not used, why (for the journal)."""

    ip: str
    note: str | None = None


def caller(rt: Runtime | None = None, req: Request | None = None) -> Caller:
    """The socket peer, IPv4-mapped IPv6 shown as IPv4; with --trust-proxy the last
    X-Forwarded-For value, but only when it parses as an IP."""
    req = req or current_request()
    peer = _peer(req.remote_addr)
    if not (rt or runtime()).settings.trust_proxy:
        return peer
    header = req.headers.get("X-Forwarded-For")
    if header is None:
        return peer
    forwarded = header.split(",")[-1].strip()
    ip = plain_ip(forwarded)
    if ip is None:
        shown = forwarded[:MAX_FORWARDED_SHOWN].encode("ascii", "backslashreplace").decode("ascii")
        return Caller(peer.ip, f"X-Forwarded-For {shown!r} is not an IP: used the socket address")
    return Caller(ip)


@functools.lru_cache(maxsize=4096)  # bounded; a Caller is a frozen value, so one per peer address is shared
def _peer(remote_addr: str | None) -> Caller:
    return Caller(plain_ip(remote_addr) or "127.0.0.1")


def caller_ip() -> str:
    return caller().ip


def plain_ip(value: str | None) -> str | None:
    """An IP in canonical text, `::ffff:a.b.c.d` as `a.b.c.d`; None if it is not an IP."""
    if not value:
        return None
    return _plain_ip(value) if len(value) <= MAX_IP_TEXT else None


@functools.lru_cache(maxsize=4096)  # bounded: forwarded values are the caller's to choose
def _plain_ip(value: str) -> str | None:
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return str(ip.ipv4_mapped)
    return str(ip)


# --- the body, strictly (views) ----------------------------------------------------------


def current_request() -> Request:
    """The request itself: one context lookup, where every `request.x` costs one more."""
    return request._get_current_object()  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Unreadable:
    """Why a request's body could not be read (kept like the bytes: every reader gets the same answer).
    `tried`: the socket was read (False: refused by its Content-Length alone, the bytes still wait)."""

    reason: str
    tried: bool = True


def raw_body(req: Request | None = None) -> bytes:
    """The request body (at most MAX_BODY), or invalid_request for an oversized or broken one.

    Read once per request and kept in its WSGI environ, the bytes or why they could not be read:
    the view, fault matching and the journal share that one read."""
    req = req or current_request()
    kept = req.environ.get(BODY_KEY)
    if kept is None:
        kept = req.environ[BODY_KEY] = _read_body(req)
    if isinstance(kept, Unreadable):
        raise RequestError(ErrorCode.INVALID_REQUEST, kept.reason)
    return kept


def _read_body(req: Request) -> bytes | Unreadable:
    return _timed(req, _read_now)


def _timed(req: Request, read: Callable[[Request], bytes | Unreadable]) -> bytes | Unreadable:
    """`read(req)`, with a body that stops arriving for --body-timeout seconds refused (a client
    that sent less than its Content-Length would otherwise hold its greenlet or thread for ever).

    The timeout is the server socket's own, set only while the body is read: gunicorn's reads
    wait in the socket, and a socket timeout costs nothing until a read has to wait. Both servers
    close the connection after the answer (gunicorn after a failed body read, werkzeug's after
    every request), so the rest of a stalled body is never taken for a next request."""
    env = req.environ
    sock = env.get("gunicorn.socket") or env.get("werkzeug.socket")  # serve, or the pytest plugin's server
    if sock is None:  # the test client: nothing waits on a socket here
        return read(req)
    timeout = runtime().settings.body_timeout
    sock.settimeout(timeout)
    stalled = False
    try:
        return read(req)
    except TimeoutError:
        stalled = True
        why = ("is the Content-Length larger than the body sent?" if _plain_content_length(env) is not None
               else "the chunked body stopped before its last chunk")
        return Unreadable(f"no more of the body arrived for {timeout} s (--body-timeout): {why}")
    finally:
        if stalled and "werkzeug.socket" in env:
            _after_werkzeug_stall(env)
        else:
            with contextlib.suppress(OSError):
                sock.settimeout(None)  # what gunicorn had: blocking while it handles the connection


def _after_werkzeug_stall(env: dict[str, Any]) -> None:
    """werkzeug's server reads what is left of the body after the answer, then closes. Its socket
    file refuses every read after a timeout ("cannot read from timed out object", logged as a
    traceback), so that mark is cleared; the timeout stays on, so a client that sends part of the
    rest and stalls again is a quiet timeout there instead of a thread blocked for ever."""
    stream = env.get("wsgi.input")
    raw = getattr(stream, "raw", None) or getattr(getattr(stream, "_rfile", None), "raw", None)
    if raw is not None and hasattr(raw, "_timeout_occurred"):
        raw._timeout_occurred = False


def _read_now(req: Request) -> bytes | Unreadable:
    env = req.environ
    length = _plain_content_length(env)
    if length is None or is_form(env):  # chunked, an odd Content-Length, a form: werkzeug's guarded read
        return _read_guarded(req)
    if length > MAX_BODY:
        return Unreadable(_TOO_LARGE, tried=False)
    try:  # one read as a rule (gunicorn's input reads up to Content-Length; werkzeug's loop costs about 24 us)
        data = env["wsgi.input"].read(length) if length else b""
        while len(data) < length:  # an input that hands the body out in pieces
            more = env["wsgi.input"].read(length - len(data))
            if not more:  # the client stopped early (e.g. half-closed): never act on part of a request
                return Unreadable(f"body ended after {len(data)} of the {length} bytes its Content-Length announced")
            data += more
        return data
    except TimeoutError:
        raise
    except BODY_READ_ERRORS as exc:
        return Unreadable(f"body could not be read: {type(exc).__name__}")


def _read_guarded(req: Request) -> bytes | Unreadable:
    if (req.content_length or 0) > MAX_BODY:
        return Unreadable(_TOO_LARGE, tried=False)
    raw = _werkzeug_read(req)
    return Unreadable(_TOO_LARGE) if isinstance(raw, bytes) and len(raw) > MAX_BODY else raw


def _werkzeug_read(req: Request) -> bytes | Unreadable:
    """werkzeug's guarded read (chunked, forms, drains): a stall stays a TimeoutError for `_timed`,
    any other broken read is Unreadable."""
    try:
        return req.get_data(cache=True)
    except TimeoutError:
        raise
    except ClientDisconnected as exc:  # werkzeug raises it while handling the read's own error, if any
        broke = exc.__context__
        if isinstance(broke, TimeoutError):
            raise broke from None
        if broke is None:  # only a body with a Content-Length: app.py caps the others, and a cap does not raise
            return Unreadable(f"body ended before the {req.content_length} bytes its Content-Length announced")
        return Unreadable(f"body could not be read: {type(broke).__name__}")
    except BODY_READ_ERRORS as exc:
        return Unreadable(f"body could not be read: {type(exc).__name__}")


def _plain_content_length(env: dict[str, Any]) -> int | None:
    """Content-Length when it is plain ASCII digits (at most 18: int() has a digit limit) and the
    body is not chunked, else None."""
    text = env.get("CONTENT_LENGTH")
    if not text or len(text) > 18 or not text.isascii() or not text.isdigit() or "HTTP_TRANSFER_ENCODING" in env:
        return None
    return int(text)


def is_form(env: dict[str, Any]) -> bool:
    """A form content type: werkzeug's `request.mimetype in FORM_TYPES`, without building its parse."""
    return env.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() in FORM_TYPES


def json_body(req: Request | None = None) -> dict[str, Any]:
    """The request body as a JSON object, or a clear invalid_request."""
    raw = raw_body(req)
    if not raw.strip():
        return {}
    return parse_json_object(raw)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json_codec.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise RequestError(ErrorCode.INVALID_REQUEST, "body is not valid UTF-8") from None
    except RecursionError:
        raise RequestError(ErrorCode.INVALID_REQUEST, "body is not valid JSON: nested too deeply") from None
    except json.JSONDecodeError as exc:
        problem = f"body is not valid JSON: {exc.msg} at position {exc.pos}"
        raise RequestError(ErrorCode.INVALID_REQUEST, problem) from None
    except ValueError as exc:  # valid JSON Python refuses, e.g. an integer past its digit limit
        raise RequestError(ErrorCode.INVALID_REQUEST, f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise RequestError(ErrorCode.INVALID_REQUEST, f"body must be a JSON object, not {type(body).__name__}")
    where = json_codec.lone_surrogate(body) if b"\\u" in raw else None  # only an escape makes one
    if where is not None:
        raise RequestError(ErrorCode.INVALID_REQUEST, f"body: {where} holds {json_codec.LONE_SURROGATE}")
    return body


def form_or_json_body(req: Request | None = None) -> dict[str, Any]:
    """Issue accepts JSON (SDKs) and form-urlencoded (docs) bodies (docs/compatibility.md §4)."""
    req = req or current_request()
    if not is_form(req.environ):
        return json_body(req)
    raw_body(req)
    try:
        return {k: v for k, v in req.form.items()}
    except UnicodeDecodeError:
        raise RequestError(ErrorCode.INVALID_REQUEST, "body is not valid UTF-8") from None


# --- the body, peeked at (fault matching, the journal) -----------------------------------------


def peek_body(req: Request | None = None) -> dict[str, Any]:
    """The body as a mapping if it is one, else {}; never raises (a broken body has no facts)."""
    req = req or current_request()
    try:
        raw = raw_body(req)
        if is_form(req.environ):
            return req.form.to_dict()
        return parse_json_object(raw) if raw.strip() else {}
    except (RequestError, *BODY_READ_ERRORS):
        return {}


def drain_body() -> None:
    """Read (and keep) a body of up to 4 x MAX_BODY, whatever it holds; never raises."""
    kept = request.environ.get(BODY_KEY)
    if isinstance(kept, bytes) or (isinstance(kept, Unreadable) and kept.tried):
        return  # raw_body read it, or tried to: a stalled or broken body is not waited for twice
    if 0 < (request.content_length or 0) <= MAX_BODY * 4:
        _timed(request, _werkzeug_read)


def peek_token(body: dict[str, Any]) -> str | None:
    """The pass token a validate body carries, if any."""
    raw = body.get("pass_token", body.get("token"))
    return raw.strip() if isinstance(raw, str) and raw.strip() else None


def request_facts(endpoint: str, req: Request | None = None) -> Facts:
    """What a fault rule can match on, read without side effects."""
    req = req or current_request()
    body = peek_body(req)
    app_key = req.headers.get("X-App-Key") or body.get("app_key")
    action = body.get("action")
    if endpoint in VALIDATES:
        action = _token_action(peek_token(body))
    elif endpoint == "challenge_solve":
        app_key, action = _challenge_facts(body.get("challenge_id"))
    return Facts(endpoint, req.method, app_key if isinstance(app_key, str) else None,
                 action if isinstance(action, str) else None)


def _token_action(raw: str | None) -> str | None:
    if raw is None:
        return None
    _kind, claims, _signed = runtime().signer.peek(raw)
    action = claims.get("act") if claims else None
    return action if isinstance(action, str) else None


def _challenge_facts(raw: Any) -> tuple[str | None, str | None]:
    if not isinstance(raw, str) or not raw:
        return None, None
    try:
        ch = runtime().codec.decode(raw)
    except (EmulatorError, ValueError, TypeError, KeyError):
        return None, None
    return ch.app_key, ch.action

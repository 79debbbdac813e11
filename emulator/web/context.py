"""One-line accessors for per-app objects (flaskr style) and request facts."""

from __future__ import annotations

import json
from typing import Any

from flask import current_app, request

from ..errors import ErrorCode, RequestError
from ..runtime import Runtime

EXTENSION = "captchala_emulator"
MAX_BODY = 64 * 1024


def runtime() -> Runtime:
    return current_app.extensions[EXTENSION]


def caller_ip() -> str:
    """The peer's IP (with --trust-proxy, ProxyFix has already applied X-Forwarded-For)."""
    return request.remote_addr or "127.0.0.1"


def json_body() -> dict[str, Any]:
    """The request body as a JSON object, or a clear invalid_request."""
    raw = request.get_data(cache=True)
    if len(raw) > MAX_BODY:
        raise RequestError(ErrorCode.INVALID_REQUEST, f"body is larger than {MAX_BODY // 1024} KiB")
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise RequestError(ErrorCode.INVALID_REQUEST, "body is not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise RequestError(ErrorCode.INVALID_REQUEST,
                           f"body is not valid JSON: {exc.msg} at position {exc.pos}") from None
    except ValueError as exc:  # valid JSON Python refuses, e.g. an integer past its digit limit
        raise RequestError(ErrorCode.INVALID_REQUEST, f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise RequestError(ErrorCode.INVALID_REQUEST, f"body must be a JSON object, not {type(body).__name__}")
    return body


def form_or_json_body() -> dict[str, Any]:
    """Issue accepts JSON (SDKs) and form-urlencoded (docs) bodies (docs/compatibility.md §4)."""
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        if (request.content_length or 0) > MAX_BODY:
            raise RequestError(ErrorCode.INVALID_REQUEST, f"body is larger than {MAX_BODY // 1024} KiB")
        try:
            return {k: v for k, v in request.form.items()}
        except UnicodeDecodeError:
            raise RequestError(ErrorCode.INVALID_REQUEST, "body is not valid UTF-8") from None
    return json_body()

"""Errors become responses here, and only here: one function per surface.

- `api_error`: the CaptchaLa envelope, for the API and the browser endpoints (token-level
  failures as HTTP 200 `valid: false`, the rest as request-level errors);
- `control_error`: plain JSON `{"error", "message"}` for the control plane `/_emulator/`.

`StoreUnavailable` becomes `service_unavailable` in `as_domain_error`, for both."""

from __future__ import annotations

from flask import Response, jsonify
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from ..errors import (
    ControlCode,
    ControlError,
    EmulatorError,
    ErrorCode,
    ProfileError,
    RequestError,
    StoreUnavailable,
    TokenRejected,
    UnknownProfile,
)
from ..faults.loader import builtin_names
from . import envelope

ROUTING_STATUSES = (404, 405, 413)  # kept as the HTTP status even without --http-status-errors


def as_domain_error(exc: BaseException) -> EmulatorError:
    """Any error as a wire-coded one: the store being down, a routing error, a bug."""
    if isinstance(exc, EmulatorError):
        return exc
    if isinstance(exc, StoreUnavailable):
        return RequestError(ErrorCode.SERVICE_UNAVAILABLE, f"store unavailable: {exc}")
    if isinstance(exc, HTTPException):
        return RequestError(envelope.error_for_status(exc.code or 400), exc.description)
    return RequestError(ErrorCode.INTERNAL_ERROR, type(exc).__name__)


def api_error(exc: BaseException, *, validate: bool = False) -> Response:
    err = as_domain_error(exc)
    if isinstance(err, TokenRejected):
        return envelope.token_failure(err)
    response = envelope.request_failure(err, validate=validate)
    if isinstance(exc, HTTPException) and exc.code in ROUTING_STATUSES:
        response.status_code = exc.code
        _allow(response, exc)
    elif not isinstance(exc, (EmulatorError, StoreUnavailable, HTTPException)):
        response.status_code = 500  # a bug: never hidden behind HTTP 200
    return response


def _allow(response: Response, exc: HTTPException) -> Response:
    """A 405 says which methods the path answers (the Allow header HTTP requires)."""
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        response.headers["Allow"] = ", ".join(sorted(exc.valid_methods))
    return response


def control_error(exc: BaseException) -> Response:
    if isinstance(exc, ControlError):
        response = _control(exc.status, exc.code.value, exc.message)
        response.headers.update(exc.headers)
        return response
    if isinstance(exc, ProfileError):
        unknown = isinstance(exc, UnknownProfile)
        code = ControlCode.UNKNOWN_PROFILE if unknown else ControlCode.INVALID_PROFILE
        response = jsonify({"error": code.value, **exc.to_dict(), "builtin": builtin_names()})
        response.status_code = 404 if unknown else 422
        return response
    if isinstance(exc, HTTPException):
        wire = envelope.error_for_status(exc.code or 400)
        return _allow(_control(exc.code or 400, wire.value, exc.description or wire.value), exc)
    if not isinstance(exc, (EmulatorError, StoreUnavailable)):  # a bug
        return _control(500, ErrorCode.INTERNAL_ERROR.value, f"{type(exc).__name__}: {exc}")
    err = as_domain_error(exc)
    return _control(err.status if isinstance(err, RequestError) else 400, err.code.value, err.reason)


def _control(status: int, error: str, message: str) -> Response:
    response = jsonify({"error": error, "message": message})
    response.status_code = status
    return response

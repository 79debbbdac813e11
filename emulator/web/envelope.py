"""The {code, msg, data} responses (docs/compatibility.md §3), built in one place."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import Response, current_app, jsonify

from ..domain import json_codec
from ..errors import EmulatorError, ErrorCode, RequestError, TokenRejected, message

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

REASON_HEADER = "X-Captchala-Emulator-Reason"


# the bytes Flask's jsonify writes for our plain dicts (compact, ASCII, keys in order, a newline),
# without its provider's per-call setup: a success is the hot path's answer
_ENCODE = json_codec.compact_encoder()


class Answer(Response):
    """An envelope answer: one buffered JSON body whose Content-Length is already set.

    werkzeug's `get_wsgi_response` re-derives that per response (a copy of the headers scanned
    for Location, Content-Location and Content-Length, then a closing iterator over a generator):
    about 46 000 instructions, 7 % of an issue request. For this body the WSGI answer is the body
    list and the headers as they are. Nothing gives an envelope answer a Location header (fault
    headers go on the canned answers only), so none needs making absolute; a HEAD request, a
    bodiless status or a body replaced by an iterator still takes werkzeug's way."""

    def get_wsgi_response(self, environ: WSGIEnvironment) -> tuple[Iterable[bytes], str, list[tuple[str, str]]]:
        status = self.status_code
        if environ["REQUEST_METHOD"] == "HEAD" or status < 200 or status in (204, 304) \
                or self.direct_passthrough or type(self.response) is not list:
            return super().get_wsgi_response(environ)
        return self.response, self.status, self.headers.to_wsgi_list()


def ok(data: dict[str, Any], msg: str = "ok") -> Response:
    return _json(ok_body(data, msg))


def _json(body: dict[str, Any]) -> Response:
    return Answer(_ENCODE(body) + "\n", content_type="application/json")


def ok_body(data: dict[str, Any], msg: str = "ok") -> dict[str, Any]:
    return {"code": 0, "msg": msg, "data": data}


def token_failure(err: TokenRejected, extra: dict[str, Any] | None = None) -> Response:
    """Token-level failures are HTTP 200 with code 0 (docs/compatibility.md §3)."""
    data = {"valid": False, "error": err.code.value, **(extra or {})}
    return _json({"code": 0, "msg": message(err.code), "data": data})


def request_failure(err: EmulatorError, *, validate: bool = False, http_status_errors: bool | None = None) -> Response:
    """Request-level failures: non-zero integer code, the code string in `error` and `data.error`."""
    status = err.status if isinstance(err, RequestError) else 400
    body = failure_body(err.code, status, validate=validate, retry_after=err.retry_after)
    if http_status_errors is None:
        http_status_errors = current_app.config.get("HTTP_STATUS_ERRORS", False)
    response = jsonify(body)
    response.status_code = status if http_status_errors else 200
    if err.retry_after is not None:
        response.headers["Retry-After"] = str(err.retry_after)
    return response


def failure_body(code: ErrorCode, status: int, *, validate: bool = False,
                 retry_after: int | None = None) -> dict[str, Any]:
    """The request-level failure envelope: `code` the status, the code string in `error` and `data.error`."""
    data: dict[str, Any] = {"error": code.value}
    if validate:
        data["valid"] = False
    if retry_after is not None:
        data["retry_after"] = retry_after
    return {"code": status, "msg": message(code), "error": code.value, "data": data}


def with_reason(response: Response, reason: str | None, *, fresh: bool = False) -> Response:
    """The reason header; `fresh`: the response cannot hold one yet (a view's own answer), so it is
    appended rather than set (werkzeug's set looks for an old one first: twice the cost)."""
    if reason:
        value = reason[:512]
        if not value.isascii():  # header values must be latin-1; reasons are ASCII by construction but be safe
            value = value.encode("ascii", "replace").decode("ascii")
        if fresh:
            response.headers.add(REASON_HEADER, value)
        else:
            response.headers[REASON_HEADER] = value
    return response


def error_for_status(status: int) -> ErrorCode:
    """The wire code an HTTP status stands for (routing errors, canned fault answers)."""
    if status == 429:
        return ErrorCode.RATE_LIMIT_EXCEEDED
    if status in (502, 503, 504):
        return ErrorCode.SERVICE_UNAVAILABLE
    return {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}.get(
        status, ErrorCode.INTERNAL_ERROR if status >= 500 else ErrorCode.INVALID_REQUEST)

"""create_app(settings) -> Flask: the only place objects are wired (flaskr's factory)."""

from __future__ import annotations

from flask import Flask, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from .domain.janitor import Janitor
from .errors import ErrorCode, RequestError, StoreUnavailable
from .runtime import Runtime, build_runtime
from .settings import Settings
from .web import (  # noqa: F401 (control_state adds routes to control.bp)
    api,
    browser,
    control,
    control_profile,  # noqa: F401 (adds the /_emulator/profile routes to control.bp)
    control_state,
    dashboard,
    diagnosis,
    envelope,
)
from .web.context import EXTENSION, MAX_BODY

CONTROL_PREFIX = "/_emulator"


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> Flask:
    settings = settings or (runtime.settings if runtime else Settings.from_env())
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY * 4, HTTP_STATUS_ERRORS=settings.http_status_errors,
                      JSON_SORT_KEYS=False)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # the DefaultJSONProvider
    rt = runtime or build_runtime(settings)
    app.extensions[EXTENSION] = rt
    if settings.profile:  # `serve` activated it in the master already; this covers in-process apps
        rt.faults.adopt(settings.profile, rt.clock.now())
    for blueprint in (api.bp, browser.bp, control.bp, dashboard.bp, diagnosis.bp):
        app.register_blueprint(blueprint)
    _install_error_handlers(app)
    _install_janitor(app, Janitor(rt.store, rt.clock))
    if settings.trust_proxy:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
    return app


def _install_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        """Unknown paths, wrong methods, oversized bodies: still a JSON answer, never HTML."""
        code = envelope.error_for_status(exc.code or 400)
        if request.path.startswith(CONTROL_PREFIX):
            return control.control_error(exc.code or 400, code.value, exc.description or code.value)
        response = envelope.request_failure(RequestError(code, exc.description))
        if exc.code in (404, 405, 413):
            response.status_code = exc.code
        return response

    @app.errorhandler(StoreUnavailable)
    def store_down(exc: StoreUnavailable):
        return envelope.request_failure(RequestError(ErrorCode.SERVICE_UNAVAILABLE, str(exc)))

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):  # a bug: still an envelope, logged with its traceback
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        if request.path.startswith(CONTROL_PREFIX):
            return control.control_error(500, "internal_error", f"{type(exc).__name__}: {exc}")
        response = envelope.request_failure(RequestError(ErrorCode.INTERNAL_ERROR, type(exc).__name__))
        response.status_code = 500
        return response


def _install_janitor(app: Flask, janitor: Janitor) -> None:
    @app.teardown_request
    def purge_now_and_then(_exc):
        try:
            janitor.maybe_purge()
        except StoreUnavailable:
            pass

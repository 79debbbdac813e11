"""create_app(settings) -> Flask: the only place objects are wired (flaskr's factory)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.middleware.proxy_fix import ProxyFix

from .domain.janitor import Janitor
from .errors import CaptchalaEmulatorError, StoreUnavailable
from .runtime import Runtime, build_runtime
from .settings import Settings
from .web import (
    answers,
    api,
    browser,
    control,
    control_apps,
    control_openapi,
    control_profile,
    control_state,
    dashboard,
    demo,
    diagnosis,
    exchange,
)
from .web.context import EXTENSION, MAX_BODY, runtime

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

CONTROL_PREFIX = "/_emulator"
# every area of the server, registered explicitly (none adds routes to another as an import side effect)
BLUEPRINTS = (api.bp, browser.bp, control.bp, control_state.bp, control_profile.bp, control_apps.bp, dashboard.bp,
              diagnosis.bp, demo.bp, control_openapi.bp)


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None,
               workers_listening: Callable[[], int] | None = None) -> Flask:
    """The app; `workers_listening`: under gunicorn, how many of its workers listen now."""
    settings = settings or (runtime.settings if runtime else Settings.from_env())
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY * 4, HTTP_STATUS_ERRORS=settings.http_status_errors,
                      JSON_SORT_KEYS=False)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    rt = runtime or build_runtime(settings)
    if workers_listening is not None:
        rt = dataclasses.replace(rt, workers_listening=workers_listening)
    app.extensions[EXTENSION] = rt
    if settings.profile:  # `serve` activated it in the master already; this covers in-process apps
        rt.faults.adopt(settings.profile, rt.clock.now())
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    _install_error_handler(app)
    _install_janitor(app, Janitor(rt.store, rt.clock))
    if settings.trust_proxy:  # X-Forwarded-For is read (and checked to be an IP) by web/context.caller
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=0, x_proto=1, x_host=1)  # type: ignore[method-assign]
    return app


def _install_error_handler(app: Flask) -> None:
    @app.errorhandler(Exception)
    def any_error(exc: Exception) -> Response:
        """Every error a view left unanswered, in its surface's shape (web/answers.py): unknown
        paths, wrong methods and oversized bodies as JSON, never HTML; a bug is also logged."""
        if not isinstance(exc, (HTTPException, CaptchalaEmulatorError)):
            app.logger.exception("unhandled error on %s %s", request.method, request.path)
        if request.path.startswith(CONTROL_PREFIX):
            return answers.control_error(exc)
        response = answers.api_error(exc)
        if isinstance(exc, (NotFound, MethodNotAllowed)) and request.path.startswith(exchange.API_PATHS):
            exchange.record_unmatched(runtime(), response, getattr(exc, "valid_methods", None))
        return response


def _install_janitor(app: Flask, janitor: Janitor) -> None:
    """Purge now and then, after any request. A WSGI wrapper rather than a teardown function: Flask
    dispatches to teardown functions on every request (about 7 500 instructions), this is one call."""
    inner = app.wsgi_app

    def wsgi_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            return inner(environ, start_response)
        finally:
            try:
                janitor.maybe_purge()
            except StoreUnavailable:
                pass

    app.wsgi_app = wsgi_app  # type: ignore[method-assign]

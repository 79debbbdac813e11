"""Control-plane routes for runtime apps (issue 13 item 3): POST /_emulator/apps adds an app
(validated exactly like an apps-file entry, 409 on a taken key), DELETE /_emulator/apps/<key>
removes one with its counters and journal entries (the tokens it consumed stay consumed). They
live in the store, so every worker and replica sees them at once.

Its own blueprint (registered by create_app) behind the control plane's guard. The listing,
GET /_emulator/apps, is in control_state."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from ..domain.apps import AppExists
from ..errors import ConfigError, ControlCode, ControlError
from . import access
from .context import json_body, runtime

bp = Blueprint("control_apps", __name__, url_prefix="/_emulator")
bp.before_request(access.guard)


@bp.post("/apps")
def add_app() -> Response | tuple[Response, int]:
    rt = runtime()
    try:
        app = rt.apps.add(json_body())
    except ConfigError as exc:
        raise ControlError(ControlCode.INVALID_APP, 422, str(exc)) from None
    except AppExists as exc:
        raise ControlError(ControlCode.APP_EXISTS, 409, str(exc)) from None
    return jsonify({"app": app.to_dict()}), 201


@bp.delete("/apps/<path:app_key>")
def remove_app(app_key: str) -> Response:
    rt = runtime()
    if rt.apps.is_fixed(app_key):
        raise ControlError(ControlCode.APP_NOT_REMOVABLE, 409,
                           f"{app_key!r} is a built-in or apps-file app; only runtime apps can be removed")
    if not rt.apps.remove(app_key):
        raise ControlError(ControlCode.UNKNOWN_APP, 404, f"no runtime app with key {app_key!r}")
    # its counters and journal entries go with it; the tokens it consumed stay consumed until they
    # expire, so the key added again (with any secret) never accepts one of them twice
    rt.store.reset(app_key, keep_uses=True)
    return jsonify({"removed": True, "app_key": app_key})

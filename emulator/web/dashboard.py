"""The dashboard page GET /_emulator/ (docs/compatibility.md §14): server-rendered, plain JS, no build step.

Its own blueprint only for templates/ and static/; it shares the control plane's admin-token
guard. With --admin-token, open /_emulator/?admin_token=… : the page hands the token on to
its assets and to every fetch it makes."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request, url_for

from .. import __version__
from ..domain.apps import App
from ..faults.loader import builtin_names
from . import access
from .context import runtime

bp = Blueprint("dashboard", __name__, url_prefix="/_emulator", template_folder="templates",
               static_folder="static", static_url_path="/static")
bp.before_request(access.guard)


@bp.get("/")
def page():
    rt = runtime()
    token = request.args.get("admin_token") if rt.settings.admin_token else None

    def asset(name: str) -> str:
        return url_for("dashboard.static", filename=name, admin_token=token or None)

    return render_template("dashboard.html", version=__version__, store=rt.store.url, asset=asset,
                           admin_token=token or "", apps=[_app_row(a) for a in rt.apps],
                           profiles=builtin_names(), base=url_for("dashboard.page").rstrip("/"))


def _app_row(app: App) -> dict[str, Any]:
    return {"app_key": app.app_key, "app_secret": app.app_secret, "name": app.name,
            "behaviour": describe_app(app), "builtin": app.builtin, "runtime": app.runtime}


def describe_app(app: App) -> str:
    """An app's behaviour in a few words, for the apps table."""
    parts = [f"widget: {app.widget.solve}" + (f" after {app.widget.delay_ms} ms" if app.widget.delay_ms else ""),
             f"pass token ttl {app.pass_token_ttl} s"]
    flags = [
        (app.disabled, "disabled (app_disabled everywhere)"),
        (app.always_fail, "validate fails every token"),
        (app.server_token_required, "server token required"),
        (app.ip_binding == "strict", "strict IP binding"),
        (app.quota is not None, f"quota {app.quota} (then dg_ tokens)"),
        (app.rate_limit is not None, f"rate limit {app.rate_limit}/min"),
    ]
    return "; ".join(parts + [text for on, text in flags if on])

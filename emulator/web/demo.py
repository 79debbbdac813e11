"""The vendor demo backend (issue 13 item 13): the React and Vue demo apps fetch a server token from
`https://demo-v1.captcha.la/demo/issue-captcha-token?action=…&app_key=…` and read
`{code: 0, data: {server_token}}`. Answering it here (with --tls auto covering that host name)
lets the unmodified demos run offline. Like the real demo backend, it holds the app secret itself:
the caller names only the app. Journaled as an `issue`, so profiles that hit issue hit it too."""

from __future__ import annotations

from flask import Blueprint, Response

from ..domain.server_tokens import IssueRequest, issue_server_token
from ..errors import ErrorCode, RequestError
from ..runtime import Runtime
from . import envelope
from .browser import cors_and_caching
from .context import form_or_json_body
from .exchange import Exchange, api_call

bp = Blueprint("demo", __name__)
bp.after_request(cors_and_caching)  # the demo pages fetch it from their own origin

PATH = "/demo/issue-captcha-token"


@bp.route(PATH, methods=["GET", "POST"])
@api_call("issue")
def demo_issue(rt: Runtime, ex: Exchange) -> Response:
    req = ex.request
    fields = {**(form_or_json_body(req) if req.method == "POST" else {}), **req.args.to_dict()}
    key = fields.get("app_key")
    ex.app_key = key if isinstance(key, str) else None
    app = rt.apps.get(ex.app_key)
    if app is None:
        why = f"no app with key {str(key)[:64]!r}" if key else "app_key is missing"
        raise RequestError(ErrorCode.INVALID_APP_KEY, why)
    if app.disabled:
        raise RequestError(ErrorCode.APP_DISABLED, f"app {app.app_key} is disabled")
    issue = IssueRequest.from_fields({"action": fields.get("action")})
    ex.action = issue.action
    token, data, reason = issue_server_token(issue, app, signer=rt.signer, now=ex.vts,
                                             max_ttl=rt.settings.max_server_token_ttl)
    ex.set_verified_token(data["server_token"], token)
    ex.reason = f"{reason} (vendor demo backend)"
    return envelope.ok(data, "success")

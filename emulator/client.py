"""EmulatorClient: every control-plane call of docs/compatibility.md §14 from Python (stdlib only).

Used by the pytest plugin and by test suites that talk to an emulator running elsewhere
(a container, a CI service). Control-plane answers are plain JSON objects."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from .errors import CaptchalaEmulatorError

DEFAULT_TIMEOUT = 10.0


def _local_profile(path: str) -> Any:
    """A profile file's document; its name defaults to the file's stem, as with --profile."""
    import yaml

    with open(path, encoding="utf-8") as handle:
        doc = yaml.safe_load(handle)
    if isinstance(doc, dict) and "name" not in doc:
        doc = {"name": os.path.splitext(os.path.basename(path))[0], **doc}
    return doc


class ControlPlaneError(CaptchalaEmulatorError):
    """The control plane answered with an error (status, machine code, human message)."""

    def __init__(self, status: int, error: str, message: str):
        super().__init__(f"HTTP {status} {error}: {message}")
        self.status = status
        self.error = error
        self.message = message


class EmulatorClient:
    """A thin client for /_emulator/...; `admin_token` is sent as a Bearer token when given."""

    def __init__(self, url: str, admin_token: str | None = None, timeout: float = DEFAULT_TIMEOUT):
        self.url = url.rstrip("/")
        self.admin_token = admin_token
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"EmulatorClient({self.url!r})"

    # --- state ---------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """The health answer; a 503 (store down) is returned, not raised, so callers can read it."""
        return self._call("GET", "/health", accept=(200, 503))

    def reset(self, app_key: str | None = None) -> dict[str, Any]:
        return self._call("POST", "/reset", query={"app_key": app_key})

    def apps(self) -> list[dict[str, Any]]:
        return self._call("GET", "/apps")["apps"]

    def add_app(self, **app: Any) -> dict[str, Any]:
        """Add a runtime app (the keys of an apps-file entry); 409 if the key is taken, 422 if invalid."""
        return self._call("POST", "/apps", body=app)["app"]

    def remove_app(self, app_key: str) -> dict[str, Any]:
        """Remove a runtime app, its counters and its journal entries (the tokens it consumed stay consumed)."""
        return self._call("DELETE", "/apps/" + urllib.parse.quote(app_key, safe=""))

    # --- tokens --------------------------------------------------------------------
    def mint(self, **claims: Any) -> str:
        """Mint a pass token without a browser (app_key, action, client_ip, uid, ttl, kind, ...)."""
        return self.mint_details(**claims)["pass_token"]

    def mint_details(self, **claims: Any) -> dict[str, Any]:
        """The whole mint answer: pass_token, challenge_id, expires_in, token_id, ..."""
        return self._call("POST", "/pass-tokens", body=claims)

    def explain(self, token: str) -> dict[str, Any]:
        """Why a token is (in)valid: kind, claims, state and its history."""
        return self._call("GET", "/tokens/" + urllib.parse.quote(token, safe=""))

    # --- fault profile -------------------------------------------------------------
    def profile(self) -> dict[str, Any]:
        return self._call("GET", "/profile")

    def use_profile(self, name_or_profile: str | Mapping[str, Any]) -> dict[str, Any]:
        """Activate a built-in profile by name, a local YAML file (read here and sent inline: the
        server never reads paths it is sent) or an inline profile mapping."""
        if isinstance(name_or_profile, str) and os.path.isfile(name_or_profile):
            try:  # the server's own --profile file or one in its --profiles-dir stays watched
                return self._call("PUT", "/profile", body={"name": name_or_profile})
            except ControlPlaneError as exc:
                if exc.status not in (404, 422):
                    raise
            body: dict[str, Any] = {"profile": _local_profile(name_or_profile)}
        elif isinstance(name_or_profile, str):
            body = {"name": name_or_profile}
        else:
            body = {"profile": dict(name_or_profile)}
        return self._call("PUT", "/profile", body=body)

    def clear_profile(self) -> dict[str, Any]:
        return self._call("DELETE", "/profile")

    # --- journal -------------------------------------------------------------------
    def requests(self, **filters: Any) -> list[dict[str, Any]]:
        """Journal entries, oldest first: endpoint, app_key, token, token_id, outcome, code, after, limit."""
        return self._call("GET", "/requests", query=filters)["requests"]

    def wait_for_request(self, timeout: float = 10.0, **filters: Any) -> dict[str, Any] | None:
        """Block until a matching request is journaled (after `after`, default: any); None on timeout."""
        query = {**filters, "timeout": timeout}
        body = self._call("GET", "/requests/wait", query=query, accept=(200, 408), timeout=timeout + self.timeout)
        return body["requests"][0] if body["requests"] else None

    # --- diagnosis ------------------------------------------------------------------
    def diagnosis(self, app_key: str | None = None, since: float | str | None = None) -> list[dict[str, Any]]:
        """The journal grouped into findings (challenge_abandoned, duplicate_submit, ...); [] when quiet."""
        return self._call("GET", "/diagnosis", query={"app_key": app_key, "since": since})["findings"]

    def audit(self, submit: Callable[[str], bool], *, app_key: str = "demo_app", action: str | None = None,
              degraded: str | None = None, fail_open: bool = False, max_wait: float = 5.0) -> dict[str, Any]:
        """Drive your app through the audit's cases: `submit(token)` hands a token to it the way its
        form would and answers whether the user got in. Returns {"cases": [...], "summary": {...}}."""
        from .audit import AuditOptions, run_audit

        options = AuditOptions(app_key=app_key, action=action, degraded=degraded, fail_open=fail_open,
                               max_wait=max_wait)
        return run_audit(self, submit, options)

    # --- virtual clock -------------------------------------------------------------
    def clock(self) -> dict[str, Any]:
        return self._call("GET", "/clock")

    def set_clock(self, offset: float) -> dict[str, Any]:
        """Set the virtual offset (seconds added to real time) for every worker."""
        return self._call("PUT", "/clock", body={"offset": offset})

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        """Move virtual time forward for every worker; tokens expire without waiting."""
        return self._call("POST", "/clock/advance", body={"seconds": seconds})

    # --- transport -----------------------------------------------------------------
    def _call(self, method: str, path: str, *, query: Mapping[str, Any] | None = None,
              body: Mapping[str, Any] | None = None, accept: tuple[int, ...] = (200, 201),
              timeout: float | None = None) -> Any:
        url = self.url + "/_emulator" + path
        params = {k: _query_value(v) for k, v in (query or {}).items() if v is not None}
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.admin_token:
            req.add_header("Authorization", f"Bearer {self.admin_token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout) as response:
                return answer_json(response.read())
        except urllib.error.HTTPError as exc:
            answer = answer_json(exc.read())
            if exc.code in accept:
                return answer
            answer = answer if isinstance(answer, dict) else {}
            raise ControlPlaneError(exc.code, answer.get("error", "http_error"),
                                    answer.get("message", exc.reason)) from None


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def answer_json(raw: bytes) -> Any:
    """An answer's JSON; a page that is not JSON (a proxy's HTML, say) as not_json with its text on one line."""
    try:
        return json.loads(raw or b"{}")
    except ValueError:
        return {"error": "not_json", "message": " ".join(raw[:200].decode("utf-8", "replace").split())}  # one line

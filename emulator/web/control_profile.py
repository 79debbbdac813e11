"""Control-plane routes for the fault profile (docs/compatibility.md §14): GET/PUT/DELETE /_emulator/profile
and GET /_emulator/profiles (the built-ins). Switching goes through the store, so it applies
to every worker at once; a refused profile leaves the active one in place.

Its own blueprint (registered by create_app) behind the control plane's guard; a refused
profile raises ProfileError, which web/answers.py turns into 404 or 422."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from ..errors import ProfileError
from ..faults import loader
from ..faults.profile import load_yaml, parse_profile
from . import access
from .context import json_body, raw_body, runtime

bp = Blueprint("control_profile", __name__, url_prefix="/_emulator")
bp.before_request(access.guard)

SOURCE = "PUT /_emulator/profile"
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


@bp.get("/profile")
def get_profile() -> Response:
    rt = runtime()
    return jsonify(rt.faults.describe(rt.clock.now))


@bp.put("/profile")
def put_profile() -> Response:
    """Body `{name}` (a built-in, or a file in --profiles-dir), `{profile: {...}}`, or YAML text."""
    rt = runtime()
    loaded = _requested_profile()
    rt.faults.activate_loaded(loaded, rt.clock.now())
    return jsonify(rt.faults.describe(rt.clock.now))


@bp.delete("/profile")
def delete_profile() -> Response:
    rt = runtime()
    rt.faults.deactivate()
    return jsonify(rt.faults.describe(rt.clock.now))


@bp.get("/profiles")
def list_profiles() -> Response:
    """The built-in profiles and what each reproduces (its header comment)."""
    names = loader.builtin_names()
    return jsonify({"profiles": [{"name": n, "description": loader.describe_builtin(n)} for n in names]})


def _requested_profile() -> loader.Loaded:
    if request.mimetype in YAML_TYPES:
        raw = raw_body()  # oversized or broken: invalid_request (400)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ProfileError(SOURCE, "", "body is not UTF-8 text") from None
        return loader.Loaded(load_yaml(text, SOURCE), SOURCE)
    body = json_body()
    unknown = sorted(set(body) - {"name", "profile"})
    if unknown or len(body) != 1:
        problem = f"unknown key {unknown[0]!r}" if unknown else "give exactly one of name, profile"
        raise ProfileError(SOURCE, unknown[0] if unknown else "", problem + " (body: {name} or {profile: {...}})")
    if "name" in body:
        name = body["name"]
        if not isinstance(name, str) or not name:
            raise ProfileError(SOURCE, "name", "expected a built-in profile name (or one in --profiles-dir)")
        settings = runtime().settings
        return loader.load_named(name, settings.profiles_dir, settings.profile)
    return loader.Loaded(parse_profile(body["profile"], SOURCE), SOURCE)

"""Control-plane routes for the fault profile (docs/compatibility.md §14): GET/PUT/DELETE /_emulator/profile
and GET /_emulator/profiles (the built-ins). Switching goes through the store, so it applies
to every worker at once; a refused profile leaves the active one in place.

Registered on `control.bp` (same prefix, same admin-token guard); app.py imports this module."""

from __future__ import annotations

from flask import Response, jsonify, request

from ..faults import loader
from ..faults.profile import ProfileError, load_yaml, parse_profile
from .context import MAX_BODY, json_body, runtime
from .control import bp

SOURCE = "PUT /_emulator/profile"
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


@bp.get("/profile")
def get_profile() -> Response:
    rt = runtime()
    return jsonify(rt.faults.describe(rt.clock.now))


@bp.put("/profile")
def put_profile() -> Response:
    """Body `{name}` (a built-in, or a file the emulator can read), `{profile: {...}}`, or YAML text."""
    rt = runtime()
    try:
        loaded = _requested_profile()
    except ProfileError as exc:
        unknown = isinstance(exc, loader.UnknownProfile)
        response = jsonify({"error": "unknown_profile" if unknown else "invalid_profile", **exc.to_dict(),
                            "builtin": loader.builtin_names()})
        response.status_code = 404 if unknown else 422
        return response
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
        raw = request.get_data(cache=True)
        if len(raw) > MAX_BODY:
            raise ProfileError(SOURCE, "", f"body is larger than {MAX_BODY // 1024} KiB")
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
            raise ProfileError(SOURCE, "name", "expected a built-in profile name or a file path")
        return loader.load(name)
    return loader.Loaded(parse_profile(body["profile"], SOURCE), SOURCE)

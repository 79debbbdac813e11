"""GET /_emulator/openapi.json (issue 13 item 15): the OpenAPI 3.1 document of the emulated API
and the control plane, shipped as `openapi/openapi.yaml` beside this module and kept true by
tests/test_openapi.py, which validates live answers against it. Its server is the URL it was
fetched from.

Its own blueprint (registered by create_app) behind the control plane's guard."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint, Response, jsonify, request

from .. import __version__
from . import access

bp = Blueprint("control_openapi", __name__, url_prefix="/_emulator")
bp.before_request(access.guard)

DOCUMENT = Path(__file__).parent / "openapi" / "openapi.yaml"


@functools.cache
def document() -> dict[str, Any]:
    """The document as shipped (read once per process; it never changes while running)."""
    doc = yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))
    doc["info"]["version"] = __version__
    return doc


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify({**document(), "servers": [{"url": request.host_url.rstrip("/")}]})

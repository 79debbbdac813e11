"""Deterministic moderation answers in the real shape (docs/compatibility.md §4): flagged, categories, content_type.

A category is flagged when the text (or an image URL) contains one of the app's words for it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import ErrorCode, RequestError
from .apps import App


def moderate_text(app: App, text: Any) -> dict[str, Any]:
    if not isinstance(text, str):
        if text is None:
            raise RequestError(ErrorCode.EMPTY_TEXT, "text is required")
        raise RequestError(ErrorCode.INVALID_REQUEST, "text must be a string")
    if not text.strip():
        raise RequestError(ErrorCode.EMPTY_TEXT, "text is empty")
    return _answer(app, [text], "text")


def moderate_input(app: App, items: Any) -> dict[str, Any]:
    if items is None or items == [] or items == "":
        raise RequestError(ErrorCode.EMPTY_INPUT, "input is required")
    if isinstance(items, str):  # OpenAI-compatible: a bare string is one text part
        items = [{"type": "text", "text": items}]
    if not isinstance(items, list):
        raise RequestError(ErrorCode.INVALID_REQUEST, "input must be a list of parts")
    texts, kinds = [], set()
    for i, part in enumerate(items):
        texts.append(_part_text(part, i))
        kinds.add(part["type"])
    content_type = "mixed" if len(kinds) > 1 else ("image" if kinds == {"image_url"} else "text")
    return _answer(app, texts, content_type)


def _part_text(part: Any, i: int) -> str:
    if not isinstance(part, Mapping) or part.get("type") not in ("text", "image_url"):
        raise RequestError(ErrorCode.INVALID_REQUEST, f"input[{i}] must be {{type: text|image_url, ...}}")
    if part["type"] == "text":
        if not isinstance(part.get("text"), str):
            raise RequestError(ErrorCode.INVALID_REQUEST, f"input[{i}].text must be a string")
        return part["text"]
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, Mapping) else image
    if not isinstance(url, str):
        raise RequestError(ErrorCode.INVALID_REQUEST, f"input[{i}].image_url.url must be a string")
    return url


def _answer(app: App, texts: list[str], content_type: str) -> dict[str, Any]:
    haystack = " ".join(texts).lower()
    categories = {
        name: any(re.search(rf"(?<![a-z0-9]){re.escape(w)}(?![a-z0-9])", haystack) for w in words)
        for name, words in app.moderation_categories().items()
    }
    return {"flagged": any(categories.values()), "categories": categories, "content_type": content_type}

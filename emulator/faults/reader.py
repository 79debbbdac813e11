"""Typed access to a parsed YAML document that fails with the source, the key path and the problem."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, NoReturn

from ..errors import ProfileError

MAX_EXACT = 2**53  # the largest integer a float holds exactly
NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")  # profile and rule names: no "/" (header) or ":" (keys)


__all__ = ["NAME", "ProfileError", "Reader", "type_name"]


def type_name(value: Any) -> str:
    """How a YAML value reads in an error message."""
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number", type(None): "nothing (null)"}.get(type(value), type(value).__name__)


class Reader:
    """Type checks that raise ProfileError with the source and the key path."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, path: str, problem: str) -> NoReturn:
        raise ProfileError(self.source, path, problem)

    def mapping(self, value: Any, path: str, known: set[str]) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            self.fail(path, f"expected a mapping, got {type_name(value)}")
        for key in value:
            if key not in known:
                shown = str(key) if str(key).isprintable() and str(key).strip() == str(key) and str(key) else repr(key)
                where = f"{path}.{shown}" if path else shown
                self.fail(where, f"unknown key (known: {', '.join(sorted(known))})")
        return value

    def string(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value:
            self.fail(path, f"expected a non-empty string, got {type_name(value)}")
        return value

    def name(self, value: Any, path: str) -> str:
        text = self.string(value, path)
        if not NAME.match(text):
            self.fail(path, f"{text!r}: use 1-64 letters, digits, '-', '_' or '.' (no '/' or ':')")
        return text

    def boolean(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            self.fail(path, f"expected true or false, got {type_name(value)}")
        return value

    def integer(self, value: Any, path: str, minimum: int | None = None, maximum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, f"expected an integer, got {type_name(value)}")
        if minimum is not None and value < minimum:
            self.fail(path, f"must be >= {minimum}")
        if maximum is not None and value > maximum:
            self.fail(path, f"must be <= {maximum}")
        return value

    def number(self, value: Any, path: str, minimum: float | None = None, maximum: float | None = None,
               exclusive: bool = False) -> float:
        # an int is compared exactly: math.isfinite or float() would raise OverflowError past 1e308
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                isinstance(value, float) and not math.isfinite(value)):
            self.fail(path, f"expected a number, got {type_name(value)}")
        if minimum is not None and (value <= minimum if exclusive else value < minimum):
            self.fail(path, f"must be {'>' if exclusive else '>='} {minimum:g}")
        if maximum is not None and value > maximum:
            self.fail(path, f"must be <= {maximum:g}")
        if isinstance(value, int) and abs(value) > MAX_EXACT:  # only where no maximum applies
            self.fail(path, f"must be <= {MAX_EXACT:g}")
        return float(value)

    def choice(self, value: Any, path: str, options: tuple[str, ...] | list[str]) -> str:
        if not isinstance(value, str) or value not in options:
            shown = repr(value) if isinstance(value, str) else type_name(value)
            self.fail(path, f"{shown} is not one of {', '.join(options)}")
        return value

    def choices(self, value: Any, path: str, options: tuple[str, ...], fold: bool = False) -> tuple[str, ...]:
        items = value if isinstance(value, list) else [value]
        if not items:
            self.fail(path, "empty list: leave the key out to match every endpoint the effect applies to")
        out = []
        for i, item in enumerate(items):
            where = f"{path}[{i}]" if isinstance(value, list) else path
            out.append(self.choice(item.upper() if fold and isinstance(item, str) else item, where, options))
        return tuple(dict.fromkeys(out))

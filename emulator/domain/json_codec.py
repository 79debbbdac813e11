"""json.dumps and json.loads for the request path: the same text and the same values, without the
Python layers `json` puts around its C encoder and scanner.

`json.loads` of a 150-byte token payload costs about 31 000 instructions, half of them in
`JSONDecoder.decode`'s regular expressions and checks; `JSONEncoder.encode` builds a C encoder on
every call. Here the scanner and the encoders are made once; anything the fast path does not
take as it is (surrounding whitespace, extra data, any error) goes to `json.loads` itself, so
errors and their messages are json's own."""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import c_make_encoder, encode_basestring, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

_SCAN_ONCE = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # set in __init__, what raw_decode calls


def loads(text: str) -> Any:
    """Exactly json.loads(text) for a str."""
    try:
        value, end = _SCAN_ONCE(text, 0)
    except (StopIteration, ValueError, RecursionError):  # json.loads says what is wrong, in its words
        return json.loads(text)
    return value if end == len(text) else json.loads(text)


def compact_encoder(*, ensure_ascii: bool = True) -> Callable[[Any], str]:
    """json.dumps(value, separators=(",", ":"), ensure_ascii=...) as a function made once.

    For dicts and lists (the C encoder's domain); the keys keep their order."""
    quote = encode_basestring_ascii if ensure_ascii else encode_basestring
    if c_make_encoder is None:  # pragma: no cover - CPython always has the C encoder
        return json.JSONEncoder(separators=(",", ":"), ensure_ascii=ensure_ascii).encode
    encode = c_make_encoder(None, _not_serializable, quote, None, ":", ",", False, False, True)
    return lambda value: "".join(encode(value, 0))


def _not_serializable(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


LONE_SURROGATE = "a lone UTF-16 surrogate (a \\uD800-\\uDFFF escape without its pair), which is not text"


def lone_surrogate(value: Any) -> str | None:
    """The key path (`rules[0].effect.body`) of the first string or key in a decoded JSON or YAML
    value that is not text: a lone UTF-16 surrogate, which a `\\ud800` escape makes and which no
    store, encoder or socket takes. None when every string is text. Iterative: a value nested as
    deeply as the parser allows must not overflow the stack here."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if not _is_text(item):
                return path or "the value"
        elif isinstance(item, dict):
            for key, child in reversed(item.items()):
                shown = _shown(key) if isinstance(key, str) else str(key)
                where = f"{path}.{shown}" if path else shown
                if isinstance(key, str) and not _is_text(key):
                    return where
                stack.append((child, where))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{i}]") for i, child in reversed(list(enumerate(item))))
    return None


def _is_text(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(key: str) -> str:
    """A key as an error message can carry it (a surrogate as its escape)."""
    return key.encode("utf-8", "backslashreplace").decode("utf-8")

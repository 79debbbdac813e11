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

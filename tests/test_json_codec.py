"""domain/json_codec.py: json.loads and compact json.dumps without json's Python layers (issue 11),
checked against json itself: the same text, the same values, the same errors and messages."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator.domain import json_codec
from tests.support.fuzz import fuzz, json_values

texts = (json_values.map(json.dumps)
         | st.builds(lambda v, a, b: a + json.dumps(v, separators=(",", ":")) + b, json_values,
                     st.sampled_from(["", " ", "\n\t", "x"]), st.sampled_from(["", " ", "\r\n", "}", "1", "[]"]))
         | st.text(max_size=60))


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def outcome(loads, text: str):
    try:
        return "value", loads(text)
    except (ValueError, RecursionError) as exc:
        return "error", f"{type(exc).__name__}: {exc}"


@fuzz(800)
@given(text=texts)
def test_loads_is_json_loads(text):
    (kind, mine), (jsons_kind, jsons) = outcome(json_codec.loads, text), outcome(json.loads, text)
    assert kind == jsons_kind and (same(mine, jsons) if kind == "value" else mine == jsons), text


@pytest.mark.parametrize("text", ["[" * 5000 + "]" * 5000, "NaN", "-Infinity", '{"a":1,"a":2}', "1" * 5000, ""])
def test_loads_is_json_loads_at_the_edges(text):
    mine, jsons = outcome(json_codec.loads, text), outcome(json.loads, text)
    assert mine[0] == jsons[0] and (same(mine[1], jsons[1]) if mine[0] == "value" else mine[1] == jsons[1])


@fuzz(400)
@given(value=st.dictionaries(st.text(max_size=12), json_values, max_size=6) | st.lists(json_values, max_size=4),
       ascii_only=st.booleans())
def test_compact_encoder_writes_json_dumps_text(value, ascii_only):
    encode = json_codec.compact_encoder(ensure_ascii=ascii_only)
    assert encode(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=ascii_only)


def test_compact_encoder_refuses_what_json_refuses():
    with pytest.raises(TypeError, match="not JSON serializable"):
        json_codec.compact_encoder()({"a": object()})

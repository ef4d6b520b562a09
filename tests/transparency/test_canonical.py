"""canonical_bytes is RFC 8785: the orjson fast path writes exactly what rfc8785 does."""

from __future__ import annotations

import enum
import sys

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from transparency_log import canonical
from transparency_log.canonical import canonical_bytes, canonical_bytes_of_parsed, fast_canonical_bytes

TYPICAL_EVENT = {
    "position": 123456,
    "originator_id": "6f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f",
    "type": "AccessRequest.Submitted",
    "version": 3,
    "timestamp": "2024-05-17T10:22:33.123456+00:00",
    "actor": "alice@example.com",
    "data": {
        "justification": "Q3 numbers \u2014 f\u00fcr Z\u00fcrich \u2713",
        "approvers": [
            {"id": "bob@example.com", "stage": 1, "decided": None},
            {"id": "carol", "stage": 2, "decided": True},
        ],
        "emergency": False,
    },
}


def _outcome(function, value):
    try:
        return function(value)
    except ValueError:
        return ValueError


def test_a_typical_event_takes_the_fast_path():
    assert fast_canonical_bytes(TYPICAL_EVENT) == rfc8785.dumps(TYPICAL_EVENT)
    assert canonical_bytes(TYPICAL_EVENT) == rfc8785.dumps(TYPICAL_EVENT)


def test_a_typical_parsed_event_is_written_by_orjson_without_the_walk_or_rfc8785(monkeypatch):
    def refuse(value):
        raise AssertionError("took the slow path")

    monkeypatch.setattr(canonical, "canonical_bytes", refuse)
    assert canonical_bytes_of_parsed(TYPICAL_EVENT) == rfc8785.dumps(TYPICAL_EVENT)


def test_every_character_is_written_as_rfc8785_writes_it_in_values_and_keys():
    characters = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    for start in range(0, len(characters), 4096):
        chunk = "".join(characters[start : start + 4096])
        value = {"value": chunk, "list": [chunk]}
        assert canonical_bytes(value) == rfc8785.dumps(value), hex(start)
    bmp_keys = {chr(c): c for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF}
    assert fast_canonical_bytes(bmp_keys) == rfc8785.dumps(bmp_keys)


def test_escapes_are_those_of_rfc8785():
    value = '"\\\b\t\n\f\r\x00\x1f\x7f\u2028\u2029/'
    assert canonical_bytes(value) == b'"\\"\\\\\\b\\t\\n\\f\\r\\u0000\\u001f\x7f\xe2\x80\xa8\xe2\x80\xa9/"'
    assert canonical_bytes(value) == rfc8785.dumps(value)


def test_keys_above_u_ffff_sort_by_utf16_through_rfc8785():
    value = {"\ue000": 1, "\U0001f600": 2}
    assert fast_canonical_bytes(value) is None
    assert canonical_bytes(value) == rfc8785.dumps(value) == '{"\U0001f600":2,"\ue000":1}'.encode()


def test_integers_beyond_the_safe_range_have_no_canonical_form():
    assert canonical_bytes([2**53 - 1, -(2**53 - 1)]) == b"[9007199254740991,-9007199254740991]"
    assert fast_canonical_bytes(2**53) is None
    with pytest.raises(ValueError):
        canonical_bytes({"big": 2**53})


def test_values_outside_the_fast_path_go_to_rfc8785():
    class Colour(enum.IntEnum):
        RED = 1

    for value in ({"f": 1.5}, {"f": 1.0}, (1, 2), {"e": Colour.RED}, [1e21]):
        assert fast_canonical_bytes(value) is None
        assert canonical_bytes(value) == rfc8785.dumps(value)


def test_values_without_canonical_form_raise_value_error():
    for value in ({"s": "\ud800"}, {"\udfff": 1}, {1: "int key"}, float("nan"), {"set": {1}}):
        assert fast_canonical_bytes(value) is None
        with pytest.raises(ValueError):
            canonical_bytes(value)


_ANY_CHARACTER = st.characters(exclude_categories=())  # lone surrogates too
_KEYS = st.text(st.characters(), max_size=6) | st.text(_ANY_CHARACTER, max_size=3)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.text(st.characters(), max_size=12)
    | st.text(_ANY_CHARACTER, max_size=4)
    | st.text(st.characters(codec="utf-8"), max_size=12)
    | st.text(st.characters(max_codepoint=0x7F), max_size=12)
)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(_KEYS, children, max_size=6),
    max_leaves=30,
)


@settings(max_examples=1000, deadline=None)
@given(JSON_VALUES)
def test_canonical_bytes_equals_rfc8785_on_random_json(value):
    assert _outcome(canonical_bytes, value) == _outcome(rfc8785.dumps, value)
    fast = fast_canonical_bytes(value)
    if fast is not None:
        assert fast == rfc8785.dumps(value)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES | st.floats(allow_nan=True))
def test_floats_anywhere_fall_back_to_rfc8785(value):
    wrapped = {"value": value, "number": 0.5}
    assert fast_canonical_bytes(wrapped) is None
    assert _outcome(canonical_bytes, wrapped) == _outcome(rfc8785.dumps, wrapped)


# Numbers and strings that look like the forms of floats orjson writes (1.5, 1e+16, 1e-7, 0.000025),
# inside strings too, so that the search of orjson's output for floats is tried at its edges.
_FLOAT_LOOKALIKES = st.sampled_from(
    ["1.5", "1.5,", ":1.5}", "0e+1]", "[1e-7,", "2024-05-17T10:22:33.123456+00:00", "v1.0]", "3e-4b5a", "a,1.0"]
)
_PARSED_SCALARS = (
    _SCALARS
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e16, 1e-7, 1.0, -0.0, 0.000025, 1.5e300, 5e-324, 2.0**53, 1e21, 123.0])
    | _FLOAT_LOOKALIKES
)
PARSED_VALUES = st.recursive(
    _PARSED_SCALARS,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(_KEYS | _FLOAT_LOOKALIKES | st.sampled_from(["\U0001f600", "\ue000", "1", "true"]), children, max_size=6),
    max_leaves=30,
)


@settings(max_examples=1500, deadline=None)
@given(PARSED_VALUES)
def test_canonical_bytes_of_parsed_equals_rfc8785_on_random_parsed_json(value):
    assert _outcome(canonical_bytes_of_parsed, value) == _outcome(rfc8785.dumps, value)


def test_floats_in_every_form_orjson_writes_are_found_in_its_output():
    for number in (1e16, 1e22, 1e-7, 5e-324, 1.5e300, 1.0, -0.0, 0.000025, 2.5, 1e21):
        for value in ({"n": number}, [number], [{"a": [number]}], {"a": "x", "b": number, "c": 1}):
            assert canonical_bytes_of_parsed(value) == rfc8785.dumps(value), value

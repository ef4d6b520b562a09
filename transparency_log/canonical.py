"""RFC 8785 (JSON Canonicalization Scheme) bytes of a JSON value, fast for typical events.

``rfc8785.dumps`` is the reference but is written in Python (about 40 us for a typical event).
``orjson`` with sorted keys and 53-bit integers writes exactly the RFC 8785 bytes, about thirty
times faster, for values of the exact JSON types (dicts with string keys, lists, strings,
integers, booleans, None) with no float and no key holding a character above U+FFFF:

* integers print as their decimal digits in both; ``OPT_STRICT_INTEGER`` refuses those beyond
  +-(2**53 - 1), which have no RFC 8785 form;
* both escape exactly ``"``, ``\\`` and the characters below U+0020, using ``\\b \\t \\n \\f
  \\r`` and otherwise ``\\u00xx`` in lowercase hex, write every other character (U+007F,
  U+2028, astral characters...) as its UTF-8 bytes, and refuse lone surrogates;
* orjson sorts keys by their UTF-8 bytes, which is code point order, and RFC 8785 by UTF-16
  code units; the two orders agree unless a key holds a character above U+FFFF;
* floats are written by the two in different forms (``1e16`` against ``10000000000000000``).

:func:`canonical_bytes` takes any value: it first checks, walking the value, that it is of that
kind. :func:`canonical_bytes_of_parsed` takes a value as a strict JSON parser makes it (no NaN,
no infinity, no other type) and skips the walk: floats and astral characters are looked for in
orjson's output instead, and send the value to the walk. Any other value (floats, big
integers, tuples, subclasses of the JSON types, strings holding lone surrogates...) goes to
``rfc8785.dumps``, which canonicalizes or rejects it.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import rfc8785

_SAFE_INTEGER = 2**53 - 1
_LAST_BMP_CHARACTER = "\uffff"
_ORJSON_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_STRICT_INTEGER
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
)

# What orjson writes otherwise than RFC 8785, found in its output with every digit read as 0: a
# float, written as digits with a fraction (``0.0``), an exponent (``0e+0``, ``0e-0``) or both;
# and a character above U+FFFF (a UTF-8 lead byte F0-F4), which may sit in a key. A fraction's
# ``0.`` is also what every timestamp holds (``0:00.000000+00:00``, as UTC ISO 8601 text ends),
# never inside a float: a float is there only if ``0.`` comes more often than such endings. Inside
# strings, each of these can be met without a float: that only costs the slow path.
_NUMBER_START = frozenset(b"-0123456789")
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_UTC_TIME_ENDING = b"0:00.000000+00:00"
_EXPONENT = re.compile(rb"0e[-+]0+[,\]}]")  # and not, say, the 0e-0 of an id's 3e-4b5a
_ALL_BUT_ASTRAL_LEADS = bytes(byte for byte in range(256) if not 0xF0 <= byte <= 0xF4)


def _may_differ(data: bytes) -> bool:
    """Whether orjson's output ``data`` may hold a float or a character above U+FFFF."""
    if data[0] in _NUMBER_START:  # a number alone
        return True
    if not data.isascii() and data.translate(None, _ALL_BUT_ASTRAL_LEADS):
        return True
    shape = data.translate(_DIGITS_AS_ZERO)
    if shape.count(b"0.") != shape.count(_UTC_TIME_ENDING):
        return True
    return (b"0e-" in shape or b"0e+" in shape) and _EXPONENT.search(shape) is not None


def _refuse(value: Any) -> Any:
    raise TypeError(f"not a JSON type: {type(value).__name__}")


def _is_scalar_orjson_writes_canonically(value: Any) -> bool:
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return True
    return kind is int and -_SAFE_INTEGER <= value <= _SAFE_INTEGER


def _orjson_writes_canonically(value: Any) -> bool:
    """Whether orjson writes ``value`` exactly as RFC 8785 does (lone surrogates aside: orjson
    refuses those)."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or (not key.isascii() and max(key) > _LAST_BMP_CHARACTER):
                return False
            if not _is_scalar_orjson_writes_canonically(item) and not _orjson_writes_canonically(item):
                return False
        return True
    if kind is list:
        for item in value:
            if not _is_scalar_orjson_writes_canonically(item) and not _orjson_writes_canonically(item):
                return False
        return True
    return _is_scalar_orjson_writes_canonically(value)


def _orjson_bytes(value: Any) -> bytes | None:
    try:
        return orjson.dumps(value, default=_refuse, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:  # a lone surrogate, a big integer, another type
        return None


def fast_canonical_bytes(value: Any) -> bytes | None:
    """The RFC 8785 bytes of ``value`` written by orjson, or None when ``value`` is outside the
    set of values for which orjson is exact."""
    if not _orjson_writes_canonically(value):
        return None
    return _orjson_bytes(value)


def canonical_bytes(value: Any) -> bytes:
    """The RFC 8785 canonical JSON bytes of ``value``, identical to ``rfc8785.dumps(value)``.

    Raises ValueError (an ``rfc8785.CanonicalizationError`` or a UnicodeError) when ``value``
    has no canonical form: NaN or infinite floats, integers beyond +-(2**53 - 1), non-string
    keys, lone surrogates or types that are not JSON.
    """
    fast = fast_canonical_bytes(value)
    if fast is not None:
        return fast
    return rfc8785.dumps(value)


def canonical_bytes_of_parsed(value: Any) -> bytes:
    """:func:`canonical_bytes` of a value as a strict JSON parser makes it (``orjson.loads``, or
    ``json.loads`` refusing NaN and Infinity), or built of such values and of strings, integers,
    booleans, None, lists and dicts with string keys: the exact types, no NaN, no infinity.

    Such a value is not walked: orjson writes it, and its output is searched for what orjson
    may write otherwise than RFC 8785 (a float, a character above U+FFFF); if found, or if
    orjson refuses the value (a lone surrogate, a big integer, a non-string key, a subclass,
    another type), :func:`canonical_bytes` decides. Four things outside that set are written by
    orjson itself, so that the answer differs from ``rfc8785.dumps``: NaN and the infinities
    (written as null), UUIDs, Enums and ``orjson.Fragment``. A strict parser makes none of them.
    """
    data = _orjson_bytes(value)
    if data is None or _may_differ(data):
        return canonical_bytes(value)
    return data

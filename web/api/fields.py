"""The boundary of the HTTP API: the fields every input schema is made of, and the bound on JSON
nesting, with the numbers of ``domain/limits.py``.

- :class:`Text` is valid Unicode with no NUL and no lone surrogate, at most ``max_length``
  characters (``maxLength`` in the OpenAPI document); :class:`Identifier` is such text of at most
  200 characters.
- :class:`Instant` is an ISO 8601 date and time with a timezone, in the years 1970 to 8999 once
  converted to UTC (kept as given: the offset is part of what the client said).
- :class:`Answers` maps at most 50 question ids to answers: text (at most 1,000 characters), a
  number, a boolean, null, or a list of at most 20 such texts; nothing nested deeper.
- :class:`Cursor` is a list's ``cursor``: text of at most 1,000 characters.
- :func:`json_depth` measures how deep a JSON body nests without parsing it, so that a body nested
  thousands deep is refused before the parser's recursion (``web/app.py``).

A refusal is a ``marshmallow.ValidationError`` on the field: 400 ``bad_request`` naming it in
``details.fields``, with the limit in the message.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from itertools import accumulate
from typing import Any

import marshmallow as ma

from domain import limits

# The years 1970 to 8999 as a JSON Schema pattern (searched, so anchored at the start); the exact
# check converts to UTC first.
YEAR_PATTERN = "^(19[7-9][0-9]|[2-8][0-9]{3})-"
CURSOR_PATTERN = "^[A-Za-z0-9_-]*$"
# No NUL, as a pattern (the regular expression ^[^\u0000]*$); a lone surrogate (sent as a \ud800
# escape) is refused too, but no pattern can say so.
NO_NUL = "^[^\\u0000]*$"
ANSWER_DOC = (
    f"text of at most {limits.MAX_ANSWER} characters (one of the question's choices when it has them), "
    f"or null; a number, a boolean or a list of at most {limits.MAX_ANSWER_ITEMS} texts is accepted here "
    "and refused by the policy (422 `invalid_answer`) unless it asks for one"
)


def _described(metadata: dict | None, addition: str) -> dict:
    metadata = dict(metadata or {})
    description = metadata.get("description")
    metadata["description"] = f"{description}; {addition}" if description else addition
    return metadata


class Text(ma.fields.String):
    """Text of at most ``max_length`` characters: valid Unicode, no NUL, no lone surrogate."""

    def __init__(self, *, max_length: int = limits.MAX_TEXT, **kwargs: Any) -> None:
        metadata = _described(kwargs.pop("metadata", None), f"at most {max_length} characters, no NUL")
        super().__init__(metadata={"maxLength": max_length, "pattern": NO_NUL, **metadata}, **kwargs)
        self.max_length = max_length

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        problem = limits.text_problem(text, self.max_length)
        if problem:
            raise ma.ValidationError(problem)
        return text


class Identifier(Text):
    """An id (user, package, policy, request, question): text of at most 200 characters."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=limits.MAX_ID, **kwargs)


class Instant(ma.fields.AwareDateTime):
    """An ISO 8601 date and time with a timezone, in the years 1970 to 8999 in UTC."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = _described(
            kwargs.pop("metadata", None),
            f"ISO 8601 with a timezone (2026-03-02T09:00:00Z), in the years {limits.EARLIEST_YEAR} to "
            f"{limits.LATEST_YEAR} in UTC",
        )
        super().__init__(metadata={"format": "date-time", "pattern": YEAR_PATTERN, **metadata}, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any):
        moment = super()._deserialize(value, attr, data, **kwargs)
        problem = limits.moment_problem(moment)
        if problem:
            raise ma.ValidationError(problem)
        return moment


def answer_problem(value: Any) -> str | None:
    if value is None or isinstance(value, (bool, int, float)):
        return None
    if isinstance(value, str):
        return limits.text_problem(value, limits.MAX_ANSWER)
    if isinstance(value, list):
        if len(value) > limits.MAX_ANSWER_ITEMS:
            return f"must list at most {limits.MAX_ANSWER_ITEMS} items (it has {len(value)})"
        for item in value:
            problem = limits.text_problem(item, limits.MAX_ANSWER)
            if problem:
                return f"each item {problem}"
        return None
    return "must be text, a number, a boolean, null or a list of texts"


class Answer(ma.fields.Raw):
    """One answer to a policy question (see :data:`ANSWER_DOC`)."""

    def __init__(self, **kwargs: Any) -> None:
        text = {"type": "string", "maxLength": limits.MAX_ANSWER, "pattern": NO_NUL}
        metadata = {
            "description": ANSWER_DOC,
            "nullable": True,
            "oneOf": [
                text,
                {"type": "number"},
                {"type": "boolean"},
                {"type": "array", "items": text, "maxItems": limits.MAX_ANSWER_ITEMS},
            ],
            **kwargs.pop("metadata", {}),
        }
        super().__init__(allow_none=True, metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        problem = answer_problem(value)
        if problem:
            raise ma.ValidationError(problem)
        return value


class QuestionId(ma.fields.String):
    """A key of ``answers``: text; one the policy does not ask (too long, with NUL...) is the
    policy's to refuse (422 ``invalid_answer``), a lone surrogate is not text at all."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        problem = limits.text_problem(text, len(text))
        if problem and "surrogate" in problem:
            raise ma.ValidationError(f"a question id {problem}")
        return text


class Answers(ma.fields.Dict):
    """At most 50 answers, by question id."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = _described(
            kwargs.pop("metadata", None),
            f"at most {limits.MAX_ANSWERS} answers, keyed by question id (a question the policy does not ask "
            "is 422 `invalid_answer`)",
        )
        super().__init__(
            keys=QuestionId(), values=Answer(), metadata={"maxProperties": limits.MAX_ANSWERS, **metadata}, **kwargs
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any):
        if isinstance(value, dict) and len(value) > limits.MAX_ANSWERS:
            raise ma.ValidationError(f"must hold at most {limits.MAX_ANSWERS} answers (it has {len(value)})")
        return super()._deserialize(value, attr, data, **kwargs)


class Cursor(Text):
    """A list's ``cursor``: what ``next_cursor`` gave out (base64url of a short JSON key)."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"pattern": CURSOR_PATTERN, **kwargs.pop("metadata", {})}
        super().__init__(max_length=limits.MAX_CURSOR, metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        cursor = super()._deserialize(value, attr, data, **kwargs)
        # A cursor that decodes carries its key to the database: its text must be text. One that
        # does not decode is the pager's to refuse (400 `invalid_cursor`).
        try:
            key = json.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode("ascii")))
        except (ValueError, binascii.Error, UnicodeError, RecursionError):
            return cursor
        for part in key if isinstance(key, list) else []:
            if isinstance(part, str) and limits.text_problem(part, limits.MAX_CURSOR):
                raise ma.ValidationError("is not a cursor this API gave out")
        return cursor


# --- JSON nesting ------------------------------------------------------------------------------

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_STEP = tuple(1 if byte in b"[{" else -1 if byte in b"]}" else 0 for byte in range(256))


def json_depth(body: bytes | str) -> int:
    """How deep the arrays and objects of a JSON text nest (``{"a": [1]}`` is 2), counted without
    parsing: strings are left out, then the brackets are summed (C loops only: a 1 MiB body of
    brackets takes milliseconds). Malformed JSON gives some number; the parser then refuses it."""
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else bytes(body)
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


class TooDeep(ValueError):
    def __init__(self, depth: int) -> None:
        super().__init__(
            f"the JSON body nests arrays and objects {depth} deep; at most {limits.MAX_JSON_DEPTH} are accepted"
        )
        self.depth = depth


def check_json_depth(body: bytes | str) -> None:
    """Raises :class:`TooDeep` for a body nested deeper than ``MAX_JSON_DEPTH``."""
    depth = json_depth(body)
    if depth > limits.MAX_JSON_DEPTH:
        raise TooDeep(depth)

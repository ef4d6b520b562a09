"""Keyset pagination for read-model lists: ``limit`` and an opaque ``cursor``."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from projections.store import Transaction

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class InvalidCursor(ValueError):
    """The cursor was not given by this API (or was changed)."""


@dataclass
class Page:
    items: list[dict[str, Any]] = field(default_factory=list)
    next_cursor: str | None = None
    position: int | None = None  # where its read model had got to, when read in the same statement


def encode_cursor(key: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key), separators=(",", ":")).encode()).decode().rstrip("=")


BIGINT = 2**63


def decode_cursor(cursor: str, types: Sequence[type]) -> list[Any]:
    """The key a cursor stands for; each part must have the type the list's key has there."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidCursor("the cursor is not one this API gave out") from None
    if not isinstance(key, list) or len(key) != len(types):
        raise InvalidCursor("the cursor is not one this API gave out")
    for part, expected in zip(key, types):
        if type(part) is not expected or (expected is int and not -BIGINT <= part < BIGINT):
            raise InvalidCursor("the cursor is not one this API gave out")
    return key


def keyset_page(
    tx: Transaction,
    *,
    select: str,
    where: str,
    params: Sequence[Any],
    key_columns: Sequence[str],
    key_types: Sequence[type],
    limit: int,
    cursor: str | None,
    row_to_item: Callable[[tuple], dict[str, Any]],
) -> Page:
    """Newest first by ``key_columns`` (the first one a log position). ``select`` must end with
    the key columns, after what ``row_to_item`` reads."""
    limit = max(1, min(int(limit), MAX_LIMIT))
    conditions = [where]
    arguments = list(params)
    if cursor:
        key = decode_cursor(cursor, key_types)
        # (a, b, c) < (x, y, z), spelled out: both dialects accept row values, this is clearer
        ors = []
        for i in range(len(key_columns)):
            parts = [f"{key_columns[j]} = ?" for j in range(i)] + [f"{key_columns[i]} < ?"]
            ors.append("(" + " AND ".join(parts) + ")")
            arguments.extend(key[: i + 1])
        conditions.append("(" + " OR ".join(ors) + ")")
    order = ", ".join(f"{column} DESC" for column in key_columns)
    rows = tx.fetchall(f"{select} WHERE {' AND '.join(conditions)} ORDER BY {order} LIMIT {limit + 1}", arguments)
    more = len(rows) > limit
    rows = rows[:limit]
    items = [row_to_item(row) for row in rows]
    next_cursor = encode_cursor(rows[-1][-len(key_columns) :]) if more and rows else None
    return Page(items=items, next_cursor=next_cursor)

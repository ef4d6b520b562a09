"""ISO 8601 durations (``P14D``, ``PT12H``) as the policies state them."""

from __future__ import annotations

from datetime import timedelta

import isodate


def parse_duration(text: str) -> timedelta:
    """``P14D`` -> 14 days. Years and months are refused: their length depends on the calendar."""
    try:
        value = isodate.parse_duration(text)
    except (isodate.ISO8601Error, TypeError, ValueError) as error:
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as P14D or PT12H") from error
    if not isinstance(value, timedelta):
        raise ValueError(f"{text!r} uses years or months; state it in weeks, days or hours (e.g. P365D)")
    if value <= timedelta(0):
        raise ValueError(f"{text!r} must be longer than zero")
    return value

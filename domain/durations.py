"""ISO 8601 durations (``P14D``, ``PT12H``) as the policies state them."""

from __future__ import annotations

from datetime import timedelta

import isodate

SHORTEST = timedelta(seconds=1)
LONGEST = timedelta(days=36500)


def parse_duration(text: str) -> timedelta:
    """``P14D`` -> 14 days. Years and months are refused (their length depends on the calendar),
    and so is anything shorter than a second or longer than 100 years."""
    try:
        value = isodate.parse_duration(text)
    except (isodate.ISO8601Error, TypeError, ValueError, OverflowError) as error:
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as P14D or PT12H") from error
    if not isinstance(value, timedelta):
        raise ValueError(f"{text!r} uses years or months; state it in weeks, days or hours (e.g. P365D)")
    if value < SHORTEST:
        raise ValueError(f"{text!r} is shorter than a second")
    if value > LONGEST:
        raise ValueError(f"{text!r} is longer than 100 years (P36500D)")
    return value

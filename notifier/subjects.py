"""The subjects of the numbered emails, word for word as in the seed's table
(../shared/seeds/004_58b208b1c487fd34.txt, "Email notifications table"), with the seed's
placeholders ``[date]``, ``[time]``, ``[requestor]`` and ``[access_package]``."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Mapping

SUBJECTS: dict[int, str] = {
    1: "Action required: Approve or deny forwarded request by [date]",
    2: "Action required: Approve or deny request by [date]",
    3: "Reminder: Approve or deny the request by [date] for [requestor]",
    4: "Approve or deny the request by [time] on [date]",
    5: "Action required reminder: Approve or deny the request by [date] for [requestor]",
    6: "Request has expired for [access_package]",
    7: "Request approved for [requestor] to [access_package]",
    8: "Request approved for [requestor] to [access_package]",
    9: "Request denied to [access_package]",
    10: "Your request has expired for [access_package]",
    11: "Action required: Approve or deny request by [date]",
    12: "Action required reminder: Approve or deny the request by [date]",
    13: "Action required: Approve or deny the request by [date] for [requestor]",
    14: "Action required reminder: Approve or deny the request by [date] for [requestor]",
    15: "Action required: Approve or deny forwarded request by [date]",
    16: "Request approved for [requestor] to [access_package]",
    17: "A request has expired for [access_package]",
    18: "You now have access to [access_package]",
    19: "Extend access for [access_package] by [date]",
    20: "Access has ended for [access_package]",
}

PLACEHOLDER = re.compile(r"\[(date|time|requestor|access_package)\]")
PLACEHOLDERS: dict[int, frozenset[str]] = {number: frozenset(PLACEHOLDER.findall(text)) for number, text in SUBJECTS.items()}


# each subject as a format string: ``{date}`` for ``[date]`` (the subjects hold no braces)
_FORMATS: dict[int, str] = {number: PLACEHOLDER.sub(r"{\1}", text) for number, text in SUBJECTS.items()}


def subject(number: int, values: Mapping[str, str]) -> str:
    """Email ``number``'s subject with its placeholders filled from ``values`` (their white space,
    line breaks included, collapsed: a header is one line)."""
    return _FORMATS[number].format_map({name: one_line(values[name]) for name in PLACEHOLDERS[number]})


@lru_cache(maxsize=4096)
def one_line(value: str) -> str:
    """``value`` with its runs of white space, line breaks included, as one space (names recur)."""
    return " ".join(value.split())

"""The limits of everything that enters the log, in one place: the web layer's schemas, the tenant
loader and the domain's own guards use these numbers (and the checks below), so a value refused at
one door is refused at every door.

Text is valid Unicode with no NUL (U+0000) and no lone surrogate (U+D800..U+DFFF), at most so many
characters; times are timezone-aware and, once converted to UTC, in the years 1970 to 8999 (so
that a deadline a century later is still a date); ids are short text. Pure: no I/O.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping

from domain import errors

# --- numbers -----------------------------------------------------------------------------------

MAX_ID = 200  # user, group, catalog, package, policy and question ids; answers' keys
MAX_NAME = 500  # display names, package and catalog names
MAX_EMAIL = 254  # an email address (RFC 5321: a path of 256 with its angle brackets)
MAX_JUSTIFICATION = 4_000  # a requestor's business justification (requests and extensions)
MAX_REASON = 4_000  # an approver's, a canceller's or a revoker's reason
MAX_TEXT = 4_000  # any other free text (descriptions)
MAX_QUESTION = 1_000  # the text of a policy question
MAX_ANSWER = 1_000  # one answer to a policy question
MAX_ANSWERS = 50  # answers in one request (and questions in one policy)
MAX_ANSWER_ITEMS = 20  # the strings of one answer given as a list
MAX_CHOICES = 100  # choices of one question
MAX_CURSOR = 1_000  # a list's `cursor` (what the API gave out is far shorter)
MAX_BODY_BYTES = 1024 * 1024  # one HTTP request body: 1 MiB
MAX_JSON_DEPTH = 32  # nesting of arrays and objects in one JSON body (ours need 3)
EARLIEST_YEAR, LATEST_YEAR = 1970, 8999  # of any time, in UTC
EARLIEST = datetime(EARLIEST_YEAR, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(LATEST_YEAR, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)


# --- errors ------------------------------------------------------------------------------------


class InvalidText(errors.InvalidInput):
    """Text that is too long, not text, or holds NUL or a lone surrogate (``details.field``,
    ``details.max_length``)."""


class TimeOutOfRange(errors.InvalidSchedule):
    """A time without a timezone, or outside the years 1970 to 8999 in UTC (``details.field``)."""


# --- checks (answer a problem, or None) --------------------------------------------------------


def text_problem(value: Any, max_length: int) -> str | None:
    """Why ``value`` is not acceptable text of at most ``max_length`` characters; None if it is."""
    if not isinstance(value, str):
        return "must be text"
    if len(value) > max_length:
        return f"must be at most {max_length} characters long (it has {len(value)})"
    if "\x00" in value:
        return "must not contain the NUL character (U+0000)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode: it holds a lone surrogate (U+D800 to U+DFFF)"
    return None


def moment_problem(value: Any) -> str | None:
    """Why ``value`` is not an acceptable time; None if it is."""
    if not isinstance(value, datetime):
        return "must be a date and time"
    if value.tzinfo is None or value.utcoffset() is None:
        return "must include a timezone"
    if utc_or_none(value) is None:
        return f"must be a time between the years {EARLIEST_YEAR} and {LATEST_YEAR} (UTC)"
    return None


def utc_or_none(value: datetime) -> datetime | None:
    """``value`` in UTC, or None when that is outside the years 1970 to 8999 (or not a date at all:
    ``0001-01-01T00:00+14:00`` has no UTC time a datetime can hold)."""
    try:
        moment = value.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        return None
    return moment if EARLIEST <= moment <= LATEST else None


# --- guards (raise the named error) ------------------------------------------------------------


def check_text(field: str, value: str | None, max_length: int) -> None:
    if value is None:
        return
    problem = text_problem(value, max_length)
    if problem:
        raise InvalidText(f"{field} {problem}", field=field, max_length=max_length)


def check_identifier(field: str, value: str | None) -> None:
    check_text(field, value, MAX_ID)


def check_moment(field: str, value: datetime | None) -> None:
    if value is None:
        return
    problem = moment_problem(value)
    if problem:
        raise TimeOutOfRange(
            f"{field} {problem}", field=field, earliest=EARLIEST.isoformat(), latest=LATEST.isoformat()
        )


def check_answers(answers: Mapping[str, Any] | None) -> None:
    """At most 50 answers keyed by question ids (a key that is no acceptable id is no question's:
    ``InvalidAnswer``), each text of at most 1,000 characters, or a list of at most 20 such texts
    (what else an answer may be is the policy's to say)."""
    if answers is None or not isinstance(answers, Mapping):
        return  # not a mapping: the policy's own check says so (InvalidAnswer)
    if len(answers) > MAX_ANSWERS:
        raise InvalidText(
            f"answers must be at most {MAX_ANSWERS}, not {len(answers)}", field="answers", max_items=MAX_ANSWERS
        )
    for key, value in answers.items():
        problem = text_problem(key, MAX_ID)
        if problem:  # no question has such an id: as for any id the policy does not ask
            raise errors.InvalidAnswer(
                f"the policy asks no question with this id: a question id {problem}", question_id=key, max_length=MAX_ID
            )
        if isinstance(value, str):
            check_text(f"answers.{key}", value, MAX_ANSWER)
        elif isinstance(value, (list, tuple)):
            if len(value) > MAX_ANSWER_ITEMS:
                raise InvalidText(
                    f"answers.{key} must list at most {MAX_ANSWER_ITEMS} items",
                    field=f"answers.{key}",
                    max_items=MAX_ANSWER_ITEMS,
                )
            for item in value:
                check_text(f"answers.{key}", item, MAX_ANSWER)


def check_input(**values: Any) -> None:
    """The guard of a command's input, by field name: ``start``/``end`` are times, ``answers``
    answers, ``justification`` and ``reason`` text, anything else (``*_id``) an id."""
    for field, value in values.items():
        if field in ("start", "end"):
            check_moment(field, value)
        elif field == "answers":
            check_answers(value)
        elif field == "justification":
            check_text(field, value, MAX_JUSTIFICATION)
        elif field == "reason":
            check_text(field, value, MAX_REASON)
        else:
            check_identifier(field, value)

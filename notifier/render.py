"""Renders a numbered email (subject, text and HTML bodies) with its jinja2 templates."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from domain.clock import as_utc
from notifier.subjects import PLACEHOLDERS, subject

TEMPLATES = Path(__file__).parent / "templates"


def parse_moment(value: datetime | str) -> datetime | None:
    """A moment of an event (a timezone-aware datetime or its ISO text), in UTC; None when it has
    no UTC time a datetime can hold, or is no time at all. Events are history: an old log may hold
    a requested start of ``0001-01-01T00:00:00+14:00`` (before year 1 in UTC), recorded before
    times were limited to the years 1970 to 8999 (``domain/limits.py``)."""
    try:
        return as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value)
    except (ValueError, OverflowError, TypeError, AttributeError):
        return None


def as_given(value: datetime | str) -> str:
    """A moment that cannot be shown in UTC is shown as the event recorded it."""
    return value if isinstance(value, str) else value.isoformat()


def format_date(value: datetime | str | None, missing: str = "not given") -> str:
    """``November 23, 2026`` (UTC); a moment without a UTC date, as given."""
    if not value:
        return missing
    if isinstance(value, str):  # a stage's deadline is in each of its emails' subjects
        return _date_of_text(value)
    return _date_of(value)


@lru_cache(maxsize=4096)
def _date_of_text(value: str) -> str:
    return _date_of(value)


def _date_of(value: datetime | str) -> str:
    moment = parse_moment(value)
    if moment is None:
        return as_given(value)
    return f"{moment:%B} {moment.day}, {moment.year}"


def format_time(value: datetime | str | None, missing: str = "not given") -> str:
    """``09:00 UTC``; a moment without a UTC time, as given."""
    if not value:
        return missing
    moment = parse_moment(value)
    return as_given(value) if moment is None else f"{moment:%H:%M} UTC"


def format_datetime(value: datetime | str | None, missing: str = "not given") -> str:
    """``November 23, 2026 09:00 UTC``; a moment without a UTC time, as given (once)."""
    if not value:
        return missing
    if parse_moment(value) is None:
        return as_given(value)
    return f"{format_date(value)} {format_time(value)}"


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        auto_reload=False,  # the templates are the package's: compiled once, never looked at again
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(date=format_date, time=format_time, datetime=format_datetime)
    return env


def subject_line(number: int, due: datetime | str | None, requestor: str, access_package: str) -> str:
    """Email ``number``'s subject: ``due`` is the moment of its ``[date]`` and ``[time]`` (or None),
    ``requestor`` and ``access_package`` the names shown. Without the templates: an email the
    notifier skips (older than its horizon) keeps its subject in the outbox, and is never rendered."""
    values = {"requestor": requestor, "access_package": access_package}
    placeholders = PLACEHOLDERS[number]
    if "date" in placeholders:  # a first projection forms a subject per skipped email: only what it shows
        values["date"] = format_date(due, missing="")
    if "time" in placeholders:
        values["time"] = format_time(due, missing="")
    return subject(number, values)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class Renderer:
    def __init__(self) -> None:
        self.env = environment()

    def render(self, number: int, context: dict[str, Any]) -> Rendered:
        """``context``: see notifier/templates/README.md. ``due`` (the ``[date]`` and ``[time]`` of
        the subject) is a moment or None."""
        title = subject_line(
            number, context.get("due"), context["requestor"]["display_name"], context["access_package"]["name"]
        )
        values = {**context, "number": number, "subject": title}
        return Rendered(
            subject=title,
            text=self.env.get_template(f"{number:02d}.txt.j2").render(values),
            html=self.env.get_template(f"{number:02d}.html.j2").render(values),
        )

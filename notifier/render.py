"""Renders a numbered email (subject, text and HTML bodies) with its jinja2 templates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from domain.clock import as_utc
from notifier.subjects import subject

TEMPLATES = Path(__file__).parent / "templates"


def parse_moment(value: datetime | str) -> datetime:
    """A moment of an event (a timezone-aware datetime or its ISO text), in UTC."""
    return as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value)


def format_date(value: datetime | str | None, missing: str = "not given") -> str:
    """``November 23, 2026`` (UTC)."""
    if not value:
        return missing
    moment = parse_moment(value)
    return f"{moment:%B} {moment.day}, {moment.year}"


def format_time(value: datetime | str | None, missing: str = "not given") -> str:
    """``09:00 UTC``."""
    return f"{parse_moment(value):%H:%M} UTC" if value else missing


def format_datetime(value: datetime | str | None, missing: str = "not given") -> str:
    """``November 23, 2026 09:00 UTC``."""
    return f"{format_date(value)} {format_time(value)}" if value else missing


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(date=format_date, time=format_time, datetime=format_datetime)
    return env


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
        due = context.get("due")
        title = subject(
            number,
            {
                "date": format_date(due, missing=""),
                "time": format_time(due, missing=""),
                "requestor": context["requestor"]["display_name"],
                "access_package": context["access_package"]["name"],
            },
        )
        values = {**context, "number": number, "subject": title}
        return Rendered(
            subject=title,
            text=self.env.get_template(f"{number:02d}.txt.j2").render(values),
            html=self.env.get_template(f"{number:02d}.html.j2").render(values),
        )

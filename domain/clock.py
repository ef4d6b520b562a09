"""Time, injected: the application asks its clock, never ``datetime.now()``."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        return datetime.now(tz=timezone.utc)


class ManualClock:
    """A clock that only moves when told to; for tests, demos and ``ENTITLEMENTS_CLOCK=manual``."""

    def __init__(self, start: datetime) -> None:
        self._now = as_utc(start)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, moment: datetime) -> None:
        """Moves the clock to ``moment``; time never goes back."""
        moment = as_utc(moment)
        with self._lock:
            if moment < self._now:
                raise ValueError(f"the clock cannot go back from {self._now.isoformat()} to {moment.isoformat()}")
            self._now = moment

    def advance(self, delta) -> datetime:
        with self._lock:
            self._now = self._now + delta
            return self._now


def as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no timezone")
    return moment.astimezone(timezone.utc)

"""Time, injected: the application asks its clock, never ``datetime.now()``."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Protocol, runtime_checkable

from domain.errors import ClockCannotGoBack


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""


@runtime_checkable
class AdjustableClock(Protocol):
    """A clock that only moves when told to (``ENTITLEMENTS_CLOCK=manual``)."""

    def now(self) -> datetime: ...

    def set(self, moment: datetime) -> None:
        """Moves the clock forward to ``moment``; raises ``ClockCannotGoBack`` for an earlier time."""


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
                raise cannot_go_back(self._now, moment)
            self._now = moment

    def advance(self, delta) -> datetime:
        with self._lock:
            self._now = self._now + delta
            return self._now


def cannot_go_back(current: datetime, wanted: datetime) -> ClockCannotGoBack:
    return ClockCannotGoBack(
        f"the clock cannot go back from {current.isoformat()} to {wanted.isoformat()}",
        now=current.isoformat(),
        wanted=wanted.isoformat(),
    )


def as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no timezone")
    return moment.astimezone(timezone.utc)

"""The scheduler: time drives requests and access.

It reads the deadlines read model and issues the command each due deadline stands for: remind the
approvers, escalate, expire the request, deliver access that was asked to start later, remind the
user that access ends, expire access. ``entitlements tick`` runs what is due once; ``entitlements
schedule`` and ``entitlements serve`` run it continuously; ``POST /admin/clock`` runs it as the
manual clock moves.

Idempotent by construction: every command checks on the aggregate that it is still due (an
approver already reminded, a request no longer pending, access already ended...) and saves with
optimistic concurrency, so a command issued twice, by two ticks or by two schedulers at once,
records its events once; the second is reported as ``skipped``.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from itertools import islice
from typing import Callable

from domain import errors
from domain.application import EntitlementsApplication, Receipt
from domain.clock import AdjustableClock, as_utc, cannot_go_back
from projections.deadlines import moment
from projections.read_models import ReadModels

log = logging.getLogger(__name__)

BATCH = 500  # deadlines read per query
CHUNK = 5000  # deadlines run between two looks at what is due

EXPIRIES = ("request_expiry", "access_expiry")

DONE = "done"
SKIPPED = "skipped"  # already done (by another scheduler, a decision...) or no longer due
FAILED = "failed"


@dataclass(frozen=True)
class Outcome:
    """What running one deadline did."""

    kind: str
    subject_id: str
    stage: int | None
    due_at: str
    outcome: str  # done, skipped or failed
    state: str | None = None  # the subject's state afterwards, when done
    detail: str | None = None  # why it was skipped or failed

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class TickReport:
    """Every deadline a tick (or a clock move) ran, in the order it ran them."""

    outcomes: list[Outcome] = field(default_factory=list)
    position: int | None = None  # log position of the last event recorded

    def count(self, outcome: str) -> int:
        return sum(1 for item in self.outcomes if item.outcome == outcome)

    @property
    def failed(self) -> list[Outcome]:
        return [item for item in self.outcomes if item.outcome == FAILED]

    def summary(self) -> str:
        done = Counter(item.kind for item in self.outcomes if item.outcome == DONE)
        kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(done.items()))
        return (
            f"ran {self.count(DONE)} deadline(s){': ' + kinds if kinds else ''};"
            f" skipped {self.count(SKIPPED)}, failed {self.count(FAILED)}"
        )


def commands(app: EntitlementsApplication) -> dict[str, Callable[[str], Receipt]]:
    """The command each kind of deadline stands for."""
    return {
        "request_reminder": app.remind_approvers,
        "request_escalation": app.escalate,
        "request_expiry": app.expire_request,
        "access_start": app.deliver,
        "access_expiry_reminder": app.remind_access_expiry,
        "access_expiry": app.expire_access,
    }


class Scheduler:
    """Runs the due deadlines of one deployment's application."""

    def __init__(self, app: EntitlementsApplication, read_models: ReadModels) -> None:
        self.app = app
        self.read_models = read_models
        self.commands = commands(app)
        # Only the deadlines (and the facts they derive from) must be current to know what is due;
        # the other read models are the projector's business.
        self._deadlines = read_models.deadlines_projector()
        self._lock = threading.Lock()  # one run at a time per process (a thread and the admin clock)

    # --- once ----------------------------------------------------------------------------------

    def tick(self) -> TickReport:
        """Runs every deadline due at the clock's time, including those the commands make due in
        turn (a stage approved by escalation starts the next one), then answers what it did."""
        report = TickReport()
        with self._lock:
            self._run_due(self.app.clock.now(), report, attempted=set())
        return report

    def advance(self, clock: AdjustableClock, to: datetime) -> TickReport:
        """Moves a manual clock forward to ``to``, stopping at each deadline on the way to run it at
        its own time: a 14-day jump reminds on day 7 and expires on day 14, as two weeks of real
        time would, and every event carries the time it was due. Raises ``ClockCannotGoBack``
        for a time before the clock's own."""
        to = as_utc(to)
        current = clock.now()
        if to < current:
            raise cannot_go_back(current, to)
        report = TickReport()
        with self._lock:
            attempted: set[tuple] = set()
            while True:
                self._deadlines.catch_up()
                upcoming = next((d for d in self._due(to) if _key(d) not in attempted), None)
                if upcoming is None:
                    break
                _move(clock, moment(upcoming["due_at"]))
                self._run_due(clock.now(), report, attempted)
            _move(clock, to)
            self._run_due(clock.now(), report, attempted)
        return report

    def _due(self, until: datetime) -> Iterator[dict]:
        """Every deadline due at ``until`` or before, earliest first, read a page at a time."""
        after = None
        while True:
            page = self.read_models.due_deadlines(until, limit=BATCH, after=after)
            yield from page
            if len(page) < BATCH:
                return
            after = (page[-1]["due_at"], page[-1]["kind"], page[-1]["subject_id"])

    def _run_due(self, now: datetime, report: TickReport, attempted: set[tuple]) -> None:
        """Runs what is due at ``now`` and not yet attempted, a chunk at a time, until nothing
        new is due (deadlines that failed, or were skipped, stay behind without holding up the
        others)."""
        while True:
            self._deadlines.catch_up()
            due = list(islice((d for d in self._due(now) if _key(d) not in attempted), CHUNK))
            if not due:
                return
            # What has ended is ended first: a reminder or escalation found due together with the
            # expiry of its request (a scheduler that was down, a jump of the clock) is then skipped.
            due.sort(key=lambda deadline: deadline["kind"] not in EXPIRIES)
            for deadline in due:
                attempted.add(_key(deadline))
                report.outcomes.append(self._run(deadline, report))

    def _run(self, deadline: dict, report: TickReport) -> Outcome:
        kind, subject_id = deadline["kind"], deadline["subject_id"]
        outcome = {"kind": kind, "subject_id": subject_id, "stage": deadline["stage"], "due_at": deadline["due_at"]}
        try:
            receipt = self.commands[kind](subject_id)
        except (errors.Conflict, errors.NotYetDue, errors.NotFound) as already:
            if isinstance(already, errors.ConcurrentModification):
                log.warning("deadline %s of %s not run, to retry: %s", kind, subject_id, already)
                return Outcome(**outcome, outcome=FAILED, detail=already.message)
            if isinstance(already, errors.RequestExpired) and kind != "request_expiry":
                # the command found the request overdue and recorded its expiry first
                report.position = self.read_models.head()
                return Outcome(**outcome, outcome=DONE, state="expired", detail=already.message)
            log.debug("deadline %s of %s skipped: %s", kind, subject_id, already)
            return Outcome(**outcome, outcome=SKIPPED, detail=already.message)
        except errors.DomainError as error:
            log.warning("deadline %s of %s failed: %s", kind, subject_id, error)
            return Outcome(**outcome, outcome=FAILED, detail=error.message)
        except Exception as error:  # a database hiccup must not stop the other deadlines
            log.warning(
                "deadline %s of %s failed: %s: %s", kind, subject_id, type(error).__name__, error,
                exc_info=log.isEnabledFor(logging.DEBUG),  # the traceback with ENTITLEMENTS_DEBUG=1
            )
            return Outcome(**outcome, outcome=FAILED, detail=f"{type(error).__name__}: {error}")
        report.position = receipt.position or report.position
        return Outcome(**outcome, outcome=DONE, state=receipt.state)

    # --- continuously --------------------------------------------------------------------------

    def follow(self, stop: threading.Event, *, interval: float = 1.0) -> None:
        """Ticks every ``interval`` seconds until ``stop`` is set; a failed tick is logged and
        tried again at the next one."""
        while not stop.is_set():
            try:
                report = self.tick()
            except Exception as error:
                log.warning(
                    "scheduler tick failed (trying again in %.1f s): %s: %s", interval, type(error).__name__, error,
                    exc_info=log.isEnabledFor(logging.DEBUG),
                )
            else:
                if report.count(DONE) or report.failed:
                    log.info("scheduler: %s", report.summary())
            stop.wait(interval)


def _move(clock: AdjustableClock, when: datetime) -> None:
    """Moves the clock forward to ``when``, unless another process already moved it further."""
    if when <= clock.now():
        return
    try:
        clock.set(when)
    except errors.ClockCannotGoBack:
        pass


def _key(deadline: dict) -> tuple:
    return deadline["kind"], deadline["subject_id"], deadline["stage"], deadline["due_at"]

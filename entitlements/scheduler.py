"""The scheduler: time drives requests and access.

It reads the deadlines read model and issues the command each due deadline stands for: remind the
approvers, escalate, expire the request, deliver access that was asked to start later, remind the
user that access ends, expire access. ``entitlements tick`` runs what is due once; ``entitlements
schedule`` and ``entitlements serve`` run it continuously; ``POST /admin/clock`` runs it as the
manual clock moves.

Idempotent by construction: every command checks on the aggregate that it is still due (an
approver already reminded, a request no longer pending, access already ended...) and saves with
optimistic concurrency, so a command issued twice, by two ticks or by two schedulers at once,
records its events once; the second is reported as ``skipped``. A deadline that fails (or is
skipped) is reported and not tried again in the same run, without holding up the others; the next
run tries it again. The report lists every deadline run, in the order it ran.

**One run** (a tick, or a jump of the manual clock) works through an agenda (:class:`_Agenda`):

- The deadlines read model is caught up once at the start, then read **a page at a time with a
  cursor** (``due_at, kind, subject_id``: the table's index order) up to the run's end, never from
  the start again: a deadline that failed, or was skipped, stays behind the cursor.
- The **clock stops at each due time** on the way (``advance``): everything due at the clock's time
  runs, expiries first (what is due together with its expiry is expired, not reminded first; a
  large backlog, as after a scheduler that was down, a chunk of ``CHUNK`` at a time), then the
  clock moves to the next due time. Before a stop, all rows due at that time have been read, so
  the order does not depend on where a page ends.
- **What the commands change is merged in without catching up after every command.** Before each
  stop the agenda reads the log events recorded since its last look (any writer's; only their
  position, subject and type matter, one indexed read), and sorts them with
  :func:`projections.deadlines.affected`: most events (a reminder done, a request expired, access
  ended) can only take deadlines away from the request or assignment they are about; the others
  (a stage started, access granted or extended) may add deadlines or move them. The deadlines
  projection is caught up (incrementally: only the new events), and the deadlines of the subjects
  concerned read again by the subject index, only when it matters:
  (a) an event that may add deadlines was recorded: before the clock moves on, since a deadline it
  added may fall before the next one already read (a command run at a due time cannot add one due
  at that time or before: stage timeouts, reminders and escalation delays are at least a second;
  one found due already, as an expiry reminder whose time passed before the access was granted,
  runs at the current time, as before);
  (b) the next stop holds a deadline of a subject that has changed since the last catch-up: its
  row may be gone (the request expired meanwhile) or have moved.
  Otherwise the rows already read are still exactly what the read model would answer, and the
  agenda goes on. A catch-up clears every changed subject at once, so in a long jump catch-ups are
  rare (about one per shortest gap between two deadlines of one subject), and each deadline costs
  its command, a look at the log and a move of the clock: the work grows with the deadlines run
  and the events recorded, never with the number of due times times a catch-up and a rescan.
  Within one stop the rows are run as read (as one tick always did): a reminder found due with
  its request's expiry is then ``skipped``.
- A run ends when nothing read is left, the table is read to the run's end, and the last look at
  the log shows nothing that may add a deadline (or the catch-up it calls for finds no new one to
  run). ``advance`` then moves the clock to its target.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Callable

from domain import errors
from domain.application import EntitlementsApplication, Receipt
from domain.clock import AdjustableClock, as_utc, cannot_go_back
from projections import deadlines as deadlines_model
from projections.deadlines import affected, fixed, moment
from projections.read_models import ReadModels

log = logging.getLogger(__name__)

BATCH = 500  # deadlines read per query
CHUNK = 5000  # deadlines due at one time (a backlog) sorted and run together, expiries first
LOOK = 5000  # log events read per query when looking at what was recorded since the last look

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
        turn, then answers what it did."""
        report = TickReport()
        with self._lock:
            now = self.app.clock.now()
            self._work_through(_Agenda(self, until=now, now=now), report)
        return report

    def advance(self, clock: AdjustableClock, to: datetime) -> TickReport:
        """Moves a manual clock forward to ``to``, stopping at each deadline on the way to run it at
        its own time: a 14-day jump reminds on day 7 and expires on day 14, as two weeks of real
        time would, and every event carries the time it was due (deadlines the commands add on the
        way too). Raises ``ClockCannotGoBack`` for a time before the clock's own."""
        to = as_utc(to)
        current = clock.now()
        if to < current:
            raise cannot_go_back(current, to)
        report = TickReport()
        with self._lock:
            self._work_through(_Agenda(self, until=to, now=current, clock=clock), report)
            _move(clock, to)
        return report

    def _work_through(self, agenda: "_Agenda", report: TickReport) -> None:
        while (deadline := agenda.next()) is not None:
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


def _moved(clock: AdjustableClock, when: datetime) -> datetime:
    """Moves ``clock`` forward to ``when``; answers its time then (later, when another process
    already moved it further)."""
    try:
        clock.set(when)
    except errors.ClockCannotGoBack:
        return clock.now()
    return when


END = ("\U0010ffff",)  # a table key after every row: the cursor once the table is read to the end


def _table_key(row: dict) -> tuple[str, str, str]:
    """A row's place in the table's order (its index ``due_at, kind, subject_id``)."""
    return row["due_at"], row["kind"], row["subject_id"]


def _attempt(row: dict) -> tuple:
    return row["kind"], row["subject_id"], row["stage"], row["due_at"]


class _Agenda:
    """The deadlines one run still has to take, in the order they run (see the module docstring).

    Rows read from the table wait in ``later`` (a heap in the table's order) until the clock
    reaches their due time, then in ``due`` (a heap: expiries first, then by due time, kind and
    subject). ``rows`` holds the current version of each row read (with the number it was held
    under), by (kind, subject): an entry of either heap whose row was replaced or dropped meanwhile
    is passed over."""

    def __init__(self, scheduler: Scheduler, *, until: datetime, now: datetime, clock: AdjustableClock | None = None) -> None:
        self.read_models = scheduler.read_models
        self.projector = scheduler._deadlines
        self.clock = clock  # None: a tick, everything runs at ``now``
        self.end = until
        self.until = fixed(until)
        self.now = fixed(now)
        self.later: list[tuple] = []
        self.due: list[tuple] = []
        self.rows: dict[tuple[str, str], tuple[int, dict]] = {}
        self.numbers = itertools.count()
        self.kinds_of: dict[str, set[str]] = {}  # subject -> kinds of its rows held
        self.cursor: tuple | None = None  # table key of the last row read; END once all are read
        self.attempted: set[tuple] = set()  # (kind, subject, stage, due_at) of the rows run
        self.changed: set[str] = set()  # subjects with events since the last catch-up
        self.adding: set[str] = set()  # ... whose events may have added or moved deadlines
        self.projector.catch_up()
        self.seen = self.projector.positions()[deadlines_model.NAME]  # the log position looked at

    # --- taking the next deadline ----------------------------------------------------------------

    def next(self) -> dict | None:
        """The next deadline to run (the clock moved to its time), or None when the run is over."""
        while True:
            self._read()
            row = self._pop_due()
            if row is not None:
                self.attempted.add(_attempt(row))
                return row
            stop = self._next_stop()
            if not self.attempted and stop is None and self.cursor is END:
                return None  # nothing was due: this run recorded nothing that could add a deadline
            self._look()  # nothing more is due now: what did the commands (and others) record?
            if self.adding:
                # a deadline may have been added before the next stop, or due now; at the end, the
                # run is over when the catch-up finds none
                if self._catch_up() or stop is not None or self.cursor is not END:
                    continue
                return None
            if stop is None:
                if self.cursor is END:
                    return None
                continue
            at_stop = self._pop_later(stop)
            if any(row["subject_id"] in self.changed for row in at_stop):
                self._hold(at_stop)
                self._catch_up()  # those rows may be gone or have moved
                continue
            self.now = fixed(_moved(self.clock, moment(stop)))
            for row in at_stop:
                self._hold(row)
            for row in self._pop_later(self.now):
                self._hold(row)

    def _read(self) -> None:
        """Reads pages of the table until every row due by the next deadline is held (or, for a
        backlog due now, a chunk of them)."""
        while self.cursor is not END:
            if self.due:
                if len(self.due) >= CHUNK:
                    return
                horizon = self.now
            else:
                horizon = self._next_stop()
            if horizon is not None and self.cursor is not None and self.cursor[0] > horizon:
                return  # every row due by ``horizon`` is held
            page = self.read_models.due_deadlines(self.end, limit=BATCH, after=self.cursor)
            for row in page:
                if _attempt(row) not in self.attempted:
                    self._hold(row)
            self.cursor = _table_key(page[-1]) if len(page) == BATCH else END

    def _hold(self, row: dict | list[dict]) -> None:
        if isinstance(row, list):
            for one in row:
                self._hold(one)
            return
        kind, subject = row["kind"], row["subject_id"]
        number = next(self.numbers)
        self.rows[(kind, subject)] = (number, row)
        self.kinds_of.setdefault(subject, set()).add(kind)
        if row["due_at"] <= self.now:
            heapq.heappush(self.due, (kind not in EXPIRIES, row["due_at"], kind, subject, number))
        else:
            heapq.heappush(self.later, (row["due_at"], kind, subject, number))

    def _current(self, entry: tuple) -> dict | None:
        held = self.rows.get((entry[-3], entry[-2]))
        return held[1] if held is not None and held[0] == entry[-1] else None

    def _release(self, row: dict) -> None:
        kind, subject = row["kind"], row["subject_id"]
        del self.rows[(kind, subject)]
        kinds = self.kinds_of[subject]
        kinds.discard(kind)
        if not kinds:
            del self.kinds_of[subject]

    def _pop_due(self) -> dict | None:
        while self.due:
            row = self._current(heapq.heappop(self.due))
            if row is not None:
                self._release(row)
                return row
        return None

    def _next_stop(self) -> str | None:
        """The due time of the earliest row held that is not due yet."""
        while self.later and self._current(self.later[0]) is None:
            heapq.heappop(self.later)
        return self.later[0][0] if self.later else None

    def _pop_later(self, until: str) -> list[dict]:
        """Takes out the rows held that are due at ``until`` or before."""
        rows = []
        while self.later and self.later[0][0] <= until:
            row = self._current(heapq.heappop(self.later))
            if row is not None:
                self._release(row)
                rows.append(row)
        return rows

    # --- keeping it current ----------------------------------------------------------------------

    def _look(self) -> None:
        """Reads the events recorded since the last look (their subjects and kinds only matter)."""
        while True:
            events = self.projector.log.read(self.seen, stop=2**62, limit=LOOK, topics=self.projector.topics)
            for event in events:
                subjects, adds = affected(event)
                self.changed.update(subjects)
                if adds:
                    self.adding.update(subjects)
            if events:
                self.seen = events[-1].position
            if len(events) < LOOK:
                return

    def _catch_up(self) -> bool:
        """Catches the deadlines up with the log and reads again the rows of the subjects that
        changed (those held, and those that may have gained rows); answers whether it found rows
        to run that were not held before."""
        self._look()
        self.projector.catch_up()
        subjects = {subject for subject in self.changed if subject in self.kinds_of} | self.adding
        self.changed, self.adding = set(), set()
        if not subjects:
            return False
        fresh = self.read_models.deadlines_of(subjects)
        before = {(kind, subject): self.rows[(kind, subject)][1] for subject in subjects for kind in self.kinds_of.get(subject, ())}
        for key, row in before.items():
            self._release(row)
        new = False
        for row in fresh:
            if row["due_at"] <= self.until and _table_key(row) <= (self.cursor or ()) and _attempt(row) not in self.attempted:
                self._hold(row)  # rows after the cursor are read with their page
                new = new or before.get((row["kind"], row["subject_id"])) != row
        return new

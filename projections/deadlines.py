"""The deadlines read model: the next due time of every timeout, escalation, reminder, delayed
start and access expiry. The scheduler reads it (``due``) and issues the commands.

Kinds: ``request_reminder``, ``request_escalation``, ``request_expiry`` (subject: a request, for
its current stage), ``access_start`` (delivery of access requested to start later),
``access_expiry_reminder`` and ``access_expiry`` (subject: an assignment). Times are stored as
UTC text of one fixed width, so that text order is time order."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from domain.durations import parse_duration
from projections.event_log import LogEvent
from projections.facts import ASSIGNMENT, PACKAGE, PENDING_APPROVAL, REQUEST, FactsReadModel, Touched, current_stage
from projections.store import Transaction

NAME = "deadlines"
TABLE = "deadlines"
ACTIVE = ("delivering", "delivered", "partially_delivered", "access_extended")
FIRST = datetime.min.replace(tzinfo=timezone.utc)
LAST = datetime.max.replace(tzinfo=timezone.utc)


def moment(value: datetime | str) -> datetime:
    """``value`` in UTC. Events are history: a time an old log holds that has no UTC datetime
    (``0001-01-01T00:00:00+14:00``, ``9999-12-31T23:59:59-12:00``, recorded before times were
    limited to the years 1970 to 8999) is the first or the last moment a datetime can hold."""
    when = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
    try:
        return when.astimezone(timezone.utc)
    except OverflowError:
        return FIRST if when.utcoffset() > timedelta(0) else LAST


def earlier(when: datetime, delta: timedelta) -> datetime:
    """``when - delta``, or the first moment a datetime can hold."""
    try:
        return when - delta
    except OverflowError:
        return FIRST


def fixed(value: datetime | str) -> str:
    """``2026-03-09T09:00:00.000000Z``: fixed width (the year too, ``0001``), so text order is time order."""
    when = moment(value)
    return f"{when.year:04d}-{when:%m-%dT%H:%M:%S.%f}Z"


# What an event can do to the deadlines, for a reader that runs many deadlines without catching
# this read model up after each command (the scheduler's jumps of the manual clock): after one of
# these events the rows of the request or assignment it is about are the same or fewer, never new
# and never moved (a reminder or an escalation done, a request decided or closed, access delivered,
# reminded or ended). Any other event of a request or an assignment may add or move a deadline (a
# stage starts, access is granted or extended): it is told apart by not being listed here, so an
# event added later counts as one that may. ``tests/integration/test_scheduler_jumps.py`` checks the
# list against the projection itself.
ONLY_REMOVE = frozenset(
    [
        f"{REQUEST}.{name}"
        for name in ("ApproverReminded", "Escalated", "StageApproved", "Approved", "Denied", "Expired", "Cancelled", "Revoked")
    ]
    + [
        f"{ASSIGNMENT}.{name}"
        for name in ("RequestOpened", "RequestClosed", "Delivered", "PartiallyDelivered", "ExpiryReminded", "AccessExpired", "Removed")
    ]
)


def affected(event: LogEvent) -> tuple[list[str], bool]:
    """The subjects (request and assignment ids) whose deadlines ``event`` may change, and whether
    it may add a deadline or move one (False: it can only take deadlines away)."""
    if event.kind.startswith(PACKAGE + "."):
        return [], False  # package names: no deadline depends on them
    subjects = [event.originator_id]
    request_id = event.data.get("request_id")
    if isinstance(request_id, str):
        subjects.append(request_id)  # the request an assignment's event is about
    return subjects, event.kind not in ONLY_REMOVE


def request_deadlines(request: dict) -> list[tuple]:
    stage = current_stage(request)
    if request["own_state"] != PENDING_APPROVAL or stage is None:
        return []
    rows = [("request_expiry", request["id"], stage["number"], fixed(stage["deadline"]))]
    if stage["reminder_at"] and not stage["reminded_at"]:
        rows.append(("request_reminder", request["id"], stage["number"], fixed(stage["reminder_at"])))
    if stage["escalation_enabled"] and stage["escalation_at"] and not stage["escalated_at"]:
        rows.append(("request_escalation", request["id"], stage["number"], fixed(stage["escalation_at"])))
    return rows


def assignment_deadlines(assignment: dict) -> list[tuple]:
    if assignment["state"] not in ACTIVE:
        return []
    rows = []
    if (
        assignment["delivery_state"] == "delivering"
        and assignment["start"]
        and moment(assignment["start"]) > moment(assignment["granted_at"])
    ):
        rows.append(("access_start", assignment["id"], None, fixed(assignment["start"])))
    end = assignment["end"]
    if end:
        rows.append(("access_expiry", assignment["id"], None, fixed(end)))
        extension = assignment.get("extension") or {}
        if extension.get("allowed") and assignment["expiry_reminded_for"] != end:
            before = extension.get("reminder_before")
            due = earlier(moment(end), parse_duration(before)) if before else moment(end)
            rows.append(("access_expiry_reminder", assignment["id"], None, fixed(due)))
    return rows


class DeadlinesReadModel(FactsReadModel):
    name = NAME
    tables = (
        f"""CREATE TABLE IF NOT EXISTS {TABLE} (
            kind TEXT NOT NULL,
            subject_id TEXT NOT NULL,
            stage INTEGER,
            due_at TEXT NOT NULL,
            PRIMARY KEY (kind, subject_id))""",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_by_subject ON {TABLE} (subject_id)",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_by_due ON {TABLE} (due_at, kind, subject_id)",
    )

    def project(self, tx: Transaction, touched: Touched) -> None:
        tx.delete_where_in(TABLE, "subject_id", [*touched.requests, *touched.assignments])
        rows = [row for request in touched.requests.values() for row in request_deadlines(request)]
        rows += [row for assignment in touched.assignments.values() for row in assignment_deadlines(assignment)]
        tx.insert_many(
            f"INSERT INTO {TABLE} (kind, subject_id, stage, due_at)", rows, types=("text", "text", "integer", "text")
        )

    # --- queries -----------------------------------------------------------------------------

    def due(self, tx: Transaction, now: datetime, *, limit: int = 1000, after: tuple[str, str, str] | None = None) -> list[dict]:
        """Deadlines due at ``now`` or before, earliest first (by due time, kind and subject);
        ``after``: the (due_at, kind, subject_id) of the last deadline of the previous page."""
        where, params = "due_at <= ?", [fixed(now)]
        if after is not None:
            where += " AND (due_at, kind, subject_id) > (?, ?, ?)"
            params += list(after)
        rows = tx.fetchall(
            f"SELECT kind, subject_id, stage, due_at FROM {TABLE} WHERE {where}"
            f" ORDER BY due_at, kind, subject_id LIMIT {int(limit)}",
            params,
        )
        return [{"kind": k, "subject_id": s, "stage": n, "due_at": d} for k, s, n, d in rows]

    def of_subjects(self, tx: Transaction, subject_ids: set[str]) -> list[dict]:
        """Every deadline of these requests and assignments (by the subject index)."""
        rows = tx.fetch_where_in(f"SELECT kind, subject_id, stage, due_at FROM {TABLE}", "subject_id", subject_ids)
        return [{"kind": k, "subject_id": s, "stage": n, "due_at": d} for k, s, n, d in rows]

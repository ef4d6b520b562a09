"""The facts read model: what is known about each request and assignment, folded from their events.

Every other read model of requests and assignments derives its rows from these facts: the facts are
folded once per batch, and each read model then rewrites the rows of the requests and assignments
the batch touched (``FactsReadModel.project``). A batch is folded in memory: the facts its events
touch are loaded in one query per table, changed, and written back once, in the batch's transaction.

The facts read model runs first in every group that needs it (the projector adds it), so a read
model never sees facts older than its own position. They may be newer: rebuilding ``pending`` alone
reads the log from position 0 with facts already at the head. That is correct because each read
model's rows are a function of the current facts of the requests and assignments they show; a
request's rows simply reach their final content at its first event instead of its last.

The request state shown to people follows DESIGN.md: a request's own state until it is approved,
then the state of the access it granted (delivering, delivered, partially delivered, extended,
expired, removed), as the domain's ``request_state`` does.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Sequence

from projections.engine import LogEvent, ReadModel, topics
from projections.store import Transaction, dumps, loads

REQUEST = "AccessRequest"
ASSIGNMENT = "Assignment"
PACKAGE = "AccessPackage"

REQUEST_TOPICS = topics(
    "access_request",
    *(
        f"{REQUEST}.{name}"
        for name in (
            "Submitted",
            "StageStarted",
            "ApproverReminded",
            "Escalated",
            "StageApproved",
            "Approved",
            "Denied",
            "Expired",
            "Cancelled",
            "Revoked",
        )
    ),
)
ASSIGNMENT_TOPICS = topics(
    "assignment",
    *(
        f"{ASSIGNMENT}.{name}"
        for name in (
            "Created",
            "RequestOpened",
            "RequestClosed",
            "Delivering",
            "Delivered",
            "PartiallyDelivered",
            "Extended",
            "ExpiryReminded",
            "AccessExpired",
            "Removed",
        )
    ),
)
PACKAGE_TOPICS = topics("access_package", f"{PACKAGE}.Registered", f"{PACKAGE}.Reconfigured")
ALL_TOPICS = REQUEST_TOPICS + ASSIGNMENT_TOPICS + PACKAGE_TOPICS

NAME = "facts"
CACHE_SIZE = 5_000  # requests (and as many assignments) kept in memory between batches

APPROVED = "approved"
PENDING_APPROVAL = "pending_approval"


def display_state(request: dict) -> str:
    if request["own_state"] == APPROVED and request.get("grant_state"):
        return request["grant_state"]
    return request["own_state"]


def deciders(request: dict, stage: dict) -> list[str]:
    """Who may decide ``stage``: its primary approvers, and its alternates once it is escalated;
    never the requestor or the target."""
    people = list(stage["approvers"])
    if stage["escalated_at"] is not None:
        people += [p for p in stage["alternate_approvers"] if p not in people]
    excluded = {request["requestor_id"], request["target_user_id"]}
    return [p for p in people if p not in excluded]


def current_stage(request: dict) -> dict | None:
    number = request["current_stage"]
    return request["stages"][number - 1] if number else None


class Facts:
    """Requests, assignments and package names, kept in tables named with ``prefix``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.requests_table = f"{prefix}_requests"
        self.assignments_table = f"{prefix}_assignments"
        self.packages_table = f"{prefix}_packages"
        self.tables = (
            f"""CREATE TABLE IF NOT EXISTS {self.requests_table} (
                request_id TEXT PRIMARY KEY,
                requestor_id TEXT NOT NULL,
                target_user_id TEXT NOT NULL,
                submitted_position BIGINT NOT NULL,
                data TEXT NOT NULL)""",
            f"""CREATE TABLE IF NOT EXISTS {self.assignments_table} (
                assignment_id TEXT PRIMARY KEY,
                user_id TEXT NOT NULL,
                data TEXT NOT NULL)""",
            f"""CREATE TABLE IF NOT EXISTS {self.packages_table} (
                originator_id TEXT PRIMARY KEY,
                package_id TEXT NOT NULL UNIQUE,
                name TEXT NOT NULL)""",
        )
        self.requests: dict[str, dict] = {}
        self.assignments: dict[str, dict] = {}
        self._packages_by_originator: dict[str, tuple[str, str]] = {}
        self.changed_requests: dict[str, None] = {}
        self.changed_assignments: dict[str, None] = {}
        self._changed_packages: dict[str, None] = {}
        # the facts of recent batches, most recently used last, valid while this read model's
        # position is still ``_cached_at`` (the end of the last batch this object committed)
        self._cached_requests: OrderedDict[str, dict] = OrderedDict()
        self._cached_assignments: OrderedDict[str, dict] = OrderedDict()
        self._cached_at: int | None = None
        self._folded_in: Transaction | None = None  # the transaction of the batch being folded

    # --- one batch ---------------------------------------------------------------------------

    def fold(self, tx: Transaction, events: Sequence[LogEvent], *, after: int) -> None:
        """Loads what ``events`` (which follow position ``after``) touch, applies them in order;
        the changed ids are then in ``changed_requests`` / ``changed_assignments`` until
        :meth:`save`. Facts kept in memory from the previous batch are used when that batch
        ended at ``after`` (nobody else moved this read model meanwhile)."""
        if after != self._cached_at:
            self._forget()
        self.requests, self.assignments = {}, {}
        self.changed_requests, self.changed_assignments, self._changed_packages = {}, {}, {}
        self._packages_by_originator = {}
        self._folded_in = tx
        request_ids = {e.originator_id for e in events if e.kind.startswith(REQUEST + ".")}
        assignment_ids = {e.originator_id for e in events if e.kind.startswith(ASSIGNMENT + ".")}
        self._load_assignments(tx, assignment_ids)
        for event in events:
            if event.kind in (f"{ASSIGNMENT}.Delivering", f"{ASSIGNMENT}.Extended"):
                request_ids.add(event.data["request_id"])
        for assignment in self.assignments.values():
            request_ids.update(assignment["grants"])
        self._load_requests(tx, request_ids)
        self._load_packages_by_originator(tx, {e.originator_id for e in events if e.kind.startswith(PACKAGE + ".")})
        for event in events:
            handler = _HANDLERS.get(event.kind)
            if handler is not None:
                handler(self, event)

    def save(self, tx: Transaction) -> None:
        tx.insert_many(
            f"INSERT INTO {self.requests_table} (request_id, requestor_id, target_user_id, submitted_position, data)",
            (
                (rid, r["requestor_id"], r["target_user_id"], r["submitted_position"], dumps(r))
                for rid, r in ((rid, self.requests[rid]) for rid in self.changed_requests)
            ),
            conflict="ON CONFLICT (request_id) DO UPDATE SET data = excluded.data",
            types=("text", "text", "text", "bigint", "text"),
        )
        tx.insert_many(
            f"INSERT INTO {self.assignments_table} (assignment_id, user_id, data)",
            ((aid, self.assignments[aid]["user_id"], dumps(self.assignments[aid])) for aid in self.changed_assignments),
            conflict="ON CONFLICT (assignment_id) DO UPDATE SET data = excluded.data",
            types=("text", "text", "text"),
        )
        tx.insert_many(
            f"INSERT INTO {self.packages_table} (originator_id, package_id, name)",
            ((oid, *self._packages_by_originator[oid]) for oid in self._changed_packages),
            conflict="ON CONFLICT (originator_id) DO UPDATE SET name = excluded.name",
            types=("text", "text", "text"),
        )

    def touched(self, tx: Transaction, events: Sequence[LogEvent], *, grants: bool = True) -> "Touched":
        """The facts of what ``events`` touch, as they are now in ``tx``: their requests and
        assignments, and (``grants``) the requests whose access those assignments hold. Call it
        after :meth:`save` when this batch was folded in ``tx``."""
        assignments = self.assignments_by_id(tx, {e.originator_id for e in events if e.kind.startswith(ASSIGNMENT + ".")})
        request_ids = {e.originator_id for e in events if e.kind.startswith(REQUEST + ".")}
        if grants:
            for assignment in assignments.values():
                request_ids.update(assignment["grants"])
        return Touched(self, self.requests_by_id(tx, request_ids), assignments)

    def requests_by_id(self, tx: Transaction, ids: set[str]) -> dict[str, dict]:
        """The current facts in ``tx`` of the requests ``ids`` (those not known are left out)."""
        return self._current(tx, ids, self.requests, self._cached_requests, self.requests_table, "request_id")

    def assignments_by_id(self, tx: Transaction, ids: set[str]) -> dict[str, dict]:
        """The current facts in ``tx`` of the assignments ``ids`` (those not known are left out)."""
        return self._current(
            tx, ids, self.assignments, self._cached_assignments, self.assignments_table, "assignment_id"
        )

    def _current(
        self, tx: Transaction, ids: set[str], batch: dict, cache: OrderedDict, table: str, key: str
    ) -> dict[str, dict]:
        """From this batch's facts, then the cache, then the table; memory only counts when this
        object folds the batch of ``tx`` (otherwise it may be older than the table)."""
        found: dict[str, dict] = {}
        missing = set()
        in_memory = self._folded_in is tx
        for row_id in ids:
            facts = (batch.get(row_id) or cache.get(row_id)) if in_memory else None
            if facts is None:
                missing.add(row_id)
            else:
                found[row_id] = facts
        found.update(self._load(tx, table, key, missing))
        return found

    def names_of(self, tx: Transaction, package_ids: set[str]) -> dict[str, str]:
        """Package names by package id (the id itself when the package is not known); call it
        after :meth:`save`, so that packages of this batch are seen."""
        names = dict(
            tx.fetch_where_in(f"SELECT package_id, name FROM {self.packages_table}", "package_id", package_ids)
        )
        return {pid: names.get(pid, pid) for pid in package_ids}

    # --- loading -----------------------------------------------------------------------------

    def _load(self, tx: Transaction, table: str, key: str, ids: set[str]) -> dict[str, dict]:
        return {row_id: loads(data) for row_id, data in tx.fetch_where_in(f"SELECT {key}, data FROM {table}", key, ids)}

    def _load_requests(self, tx: Transaction, ids: set[str]) -> None:
        self.requests.update(self.requests_by_id(tx, ids))

    def _load_assignments(self, tx: Transaction, ids: set[str]) -> None:
        self.assignments.update(self.assignments_by_id(tx, ids))

    # --- the cache between batches -------------------------------------------------------------

    def finished(self, position: int | None) -> None:
        """After the batch's transaction: keep what it loaded and changed for the next batch
        (committed up to ``position``), or forget everything (None: rolled back)."""
        self._folded_in = None
        if position is None:
            self._forget()
            return
        for cache, facts in ((self._cached_requests, self.requests), (self._cached_assignments, self.assignments)):
            for row_id, value in facts.items():
                cache[row_id] = value
                cache.move_to_end(row_id)
            while len(cache) > CACHE_SIZE:
                cache.popitem(last=False)
        self._cached_at = position

    def _forget(self) -> None:
        self._cached_requests.clear()
        self._cached_assignments.clear()
        self._cached_at = None

    def _load_packages_by_originator(self, tx: Transaction, ids: set[str]) -> None:
        rows = tx.fetch_where_in(
            f"SELECT originator_id, package_id, name FROM {self.packages_table}", "originator_id", ids
        )
        for oid, package_id, name in rows:
            self._packages_by_originator[oid] = (package_id, name)

    # --- requests ----------------------------------------------------------------------------

    def _request(self, event: LogEvent) -> dict | None:
        request = self.requests.get(event.originator_id)
        if request is not None:
            request["updated_position"] = event.position
            self.changed_requests[event.originator_id] = None
        return request

    def _submitted(self, event: LogEvent) -> None:
        d = event.data
        request = {
            "id": event.originator_id,
            "request_type": d["request_type"],
            "requestor_id": d["requestor_id"],
            "target_user_id": d["target_user_id"],
            "access_package_id": d["access_package_id"],
            "catalog_id": d.get("catalog_id"),
            "policy_id": d["policy_id"],
            "policy_version": d.get("policy_version"),
            "assignment_id": d["assignment_id"],
            "submitted_at": event.timestamp,
            "submitted_position": event.position,
            "updated_position": event.position,
            "own_state": "submitted",
            "grant_state": None,
            "current_stage": 0,
            "expires_at": None,
            "closed_at": None,
            "closed_position": None,
            "cancelled_by": None,
            "cancellation_reason": None,
            "revoked_by": None,
            "revoked_at": None,
            "revocation_reason": None,
            "stages": [
                {
                    "number": stage.get("number", number),
                    "approvers": list(stage.get("approvers", [])),
                    "alternate_approvers": list(stage.get("alternate_approvers", [])),
                    "escalation_enabled": bool(stage.get("escalation_enabled")),
                    "started_at": None,
                    "deadline": None,
                    "reminder_at": None,
                    "escalation_at": None,
                    "reminded_at": None,
                    "escalated_at": None,
                    "decision": None,
                    "decided_by": None,
                    "reason": None,
                    "decided_at": None,
                }
                for number, stage in enumerate(d.get("stages") or [], start=1)
            ],
        }
        request.update(
            justification=d.get("justification"),
            questions=d.get("questions") or [],
            answers=d.get("answers") or {},
            start=d.get("start"),
            end=d.get("end"),
            notifications_enabled=d.get("notifications_enabled", True),
        )
        self.requests[event.originator_id] = request
        self.changed_requests[event.originator_id] = None

    def _stage_started(self, event: LogEvent) -> None:
        request = self._request(event)
        if request is None:
            return
        d = event.data
        request["own_state"] = PENDING_APPROVAL
        request["current_stage"] = d["stage"]
        request["expires_at"] = d["deadline"]
        request["stages"][d["stage"] - 1].update(
            started_at=event.timestamp,
            deadline=d["deadline"],
            reminder_at=d.get("reminder_at"),
            escalation_at=d.get("escalation_at"),
        )

    def _reminded(self, event: LogEvent) -> None:
        request = self._request(event)
        if request is not None:
            request["stages"][event.data["stage"] - 1]["reminded_at"] = event.timestamp

    def _escalated(self, event: LogEvent) -> None:
        request = self._request(event)
        if request is not None:
            stage = request["stages"][event.data["stage"] - 1]
            stage["escalated_at"] = event.timestamp
            stage["alternate_approvers"] = list(event.data.get("alternate_approvers", stage["alternate_approvers"]))

    def _decided(
        self, request: dict, event: LogEvent, decision: str, decided_by: str | None, reason: str | None
    ) -> None:
        number = event.data.get("stage") or request["current_stage"]
        if number:
            request["stages"][number - 1].update(
                decision=decision,
                decided_by=decided_by,
                reason=reason,
                decided_at=event.timestamp,
                decided_position=event.position,
            )

    def _close(self, request: dict, event: LogEvent, state: str) -> None:
        request["own_state"] = state
        request["closed_at"] = event.timestamp
        request["closed_position"] = event.position
        request["expires_at"] = None

    def _stage_approved(self, event: LogEvent) -> None:
        request = self._request(event)
        if request is not None:
            self._decided(request, event, "approved", event.data["actor"], event.data.get("reason"))

    def _approved(self, event: LogEvent) -> None:
        request = self._request(event)
        if request is not None:
            self._close(request, event, APPROVED)

    def _denied(self, event: LogEvent) -> None:
        request = self._request(event)
        if request is not None:
            self._decided(request, event, "denied", event.data["actor"], event.data.get("reason"))
            self._close(request, event, "denied")

    def _expired(self, event: LogEvent) -> None:
        request = self._request(event)
        if request is not None:
            self._decided(request, event, "expired", None, None)
            self._close(request, event, "expired")

    def _cancelled(self, event: LogEvent) -> None:
        request = self._request(event)
        if request is None:
            return
        reason = event.data.get("reason")
        if request["current_stage"] and request["own_state"] == PENDING_APPROVAL:
            self._decided(request, event, "cancelled", event.data["actor"], reason)
        request["cancelled_by"] = event.data["actor"]
        request["cancellation_reason"] = reason
        self._close(request, event, "cancelled")

    def _revoked(self, event: LogEvent) -> None:
        request = self._request(event)
        if request is None:
            return
        request["own_state"] = "revoked"
        request["revoked_by"] = event.data["actor"]
        request["revoked_at"] = event.timestamp
        request["revocation_reason"] = event.data.get("reason")
        request["revoked_stage"] = event.data.get("stage")
        request["closed_position"] = event.position

    # --- assignments -------------------------------------------------------------------------

    def _assignment(self, event: LogEvent) -> dict | None:
        assignment = self.assignments.get(event.originator_id)
        if assignment is not None:
            assignment["updated_position"] = event.position
            self.changed_assignments[event.originator_id] = None
        return assignment

    def _assignment_created(self, event: LogEvent) -> None:
        self.assignments[event.originator_id] = {
            "id": event.originator_id,
            "user_id": event.data["user_id"],
            "access_package_id": event.data["access_package_id"],
            "state": None,
            "delivery_state": None,
            "open_request_id": None,
            "request_id": None,
            "grants": [],
            "policy_id": None,
            "start": None,
            "end": None,
            "extension": {},
            "expiry_reminded_for": None,
            "granted_at": None,
            "granted_position": None,
            "ended_at": None,
            "updated_position": event.position,
        }
        self.changed_assignments[event.originator_id] = None

    def _set_assignment_state(self, assignment: dict, state: str) -> None:
        assignment["state"] = state
        for request_id in assignment["grants"]:
            request = self.requests.get(request_id)
            if request is not None:
                request["grant_state"] = state
                self.changed_requests[request_id] = None

    def _request_opened(self, event: LogEvent) -> None:
        assignment = self._assignment(event)
        if assignment is not None:
            assignment["open_request_id"] = event.data["request_id"]

    def _request_closed(self, event: LogEvent) -> None:
        assignment = self._assignment(event)
        if assignment is not None:
            assignment["open_request_id"] = None

    def _delivering(self, event: LogEvent) -> None:
        assignment = self._assignment(event)
        if assignment is None:
            return
        d = event.data
        assignment.update(
            request_id=d["request_id"],
            grants=[d["request_id"]],
            policy_id=d.get("policy_id"),
            start=d.get("start"),
            end=d.get("end"),
            extension=d.get("extension") or {},
            expiry_reminded_for=None,
            delivery_state="delivering",
            granted_at=event.timestamp,
            granted_position=event.position,
            ended_at=None,
        )
        self._set_assignment_state(assignment, "delivering")

    def _delivered(self, event: LogEvent) -> None:
        assignment = self._assignment(event)
        if assignment is None:
            return
        assignment["delivery_state"] = "delivered"
        if assignment["state"] in ("delivering", "partially_delivered"):
            self._set_assignment_state(assignment, "delivered")

    def _partially_delivered(self, event: LogEvent) -> None:
        assignment = self._assignment(event)
        if assignment is None:
            return
        assignment["delivery_state"] = "partially_delivered"
        if assignment["state"] == "delivering":
            self._set_assignment_state(assignment, "partially_delivered")

    def _extended(self, event: LogEvent) -> None:
        assignment = self._assignment(event)
        if assignment is None:
            return
        assignment["end"] = event.data.get("end")
        assignment["grants"].append(event.data["request_id"])
        self._set_assignment_state(assignment, "access_extended")

    def _expiry_reminded(self, event: LogEvent) -> None:
        assignment = self._assignment(event)
        if assignment is not None:
            assignment["expiry_reminded_for"] = event.data.get("end")

    def _access_expired(self, event: LogEvent) -> None:
        self._access_ended(event, "access_expired")

    def _removed(self, event: LogEvent) -> None:
        self._access_ended(event, "removed")

    def _access_ended(self, event: LogEvent, state: str) -> None:
        assignment = self._assignment(event)
        if assignment is not None:
            assignment["ended_at"] = event.timestamp
            self._set_assignment_state(assignment, state)

    # --- packages ----------------------------------------------------------------------------

    def _package(self, event: LogEvent) -> None:
        settings = event.data.get("settings") or {}
        known = self._packages_by_originator.get(event.originator_id)
        package_id = event.data.get("key") or (known[0] if known else None)
        if package_id is None:
            return
        name = settings.get("name") or package_id
        self._packages_by_originator[event.originator_id] = (package_id, name)
        self._changed_packages[event.originator_id] = None


_HANDLERS = {
    f"{REQUEST}.Submitted": Facts._submitted,
    f"{REQUEST}.StageStarted": Facts._stage_started,
    f"{REQUEST}.ApproverReminded": Facts._reminded,
    f"{REQUEST}.Escalated": Facts._escalated,
    f"{REQUEST}.StageApproved": Facts._stage_approved,
    f"{REQUEST}.Approved": Facts._approved,
    f"{REQUEST}.Denied": Facts._denied,
    f"{REQUEST}.Expired": Facts._expired,
    f"{REQUEST}.Cancelled": Facts._cancelled,
    f"{REQUEST}.Revoked": Facts._revoked,
    f"{ASSIGNMENT}.Created": Facts._assignment_created,
    f"{ASSIGNMENT}.RequestOpened": Facts._request_opened,
    f"{ASSIGNMENT}.RequestClosed": Facts._request_closed,
    f"{ASSIGNMENT}.Delivering": Facts._delivering,
    f"{ASSIGNMENT}.Delivered": Facts._delivered,
    f"{ASSIGNMENT}.PartiallyDelivered": Facts._partially_delivered,
    f"{ASSIGNMENT}.Extended": Facts._extended,
    f"{ASSIGNMENT}.ExpiryReminded": Facts._expiry_reminded,
    f"{ASSIGNMENT}.AccessExpired": Facts._access_expired,
    f"{ASSIGNMENT}.Removed": Facts._removed,
    f"{PACKAGE}.Registered": Facts._package,
    f"{PACKAGE}.Reconfigured": Facts._package,
}


class FactsModel(ReadModel):
    """The facts read model: the first stage of every read model of requests and assignments."""

    name = NAME
    topics = ALL_TOPICS

    def __init__(self) -> None:
        self.facts = Facts(NAME)
        self.tables = self.facts.tables

    def apply(self, tx: Transaction, events: Sequence[LogEvent], *, after: int) -> None:
        self.facts.fold(tx, events, after=after)
        self.facts.save(tx)

    def finished(self, position: int | None) -> None:
        self.facts.finished(position)

    def clear(self, tx: Transaction) -> None:
        super().clear(tx)
        self.facts.finished(None)


@dataclass
class Touched:
    """The requests and assignments a batch touched, with their facts as they are now."""

    facts: Facts
    requests: dict[str, dict]
    assignments: dict[str, dict]

    def names_of(self, tx: Transaction, package_ids: set[str]) -> dict[str, str]:
        return self.facts.names_of(tx, package_ids)


class FactsReadModel(ReadModel):
    """A read model derived from the facts: each batch, :meth:`project` rewrites the rows of the
    requests and assignments its events touched, from their current facts."""

    topics = ALL_TOPICS
    grants = True  # an assignment's events also touch the requests whose access it holds

    def __init__(self, source: FactsModel) -> None:
        self.source = source
        self.sources = (source,)

    def apply(self, tx: Transaction, events: Sequence[LogEvent], *, after: int) -> None:
        self.project(tx, self.source.facts.touched(tx, events, grants=self.grants))

    def project(self, tx: Transaction, touched: Touched) -> None:
        """Rewrites the rows of what ``touched`` holds."""
        raise NotImplementedError


def list_item(request: dict, package_name: str) -> dict[str, Any]:
    """The fields every request list shows (API.md: pending, history, ``/me/requests``)."""
    return {
        "request_id": request["id"],
        "request_type": request["request_type"],
        "access_package_id": request["access_package_id"],
        "access_package_name": package_name,
        "requestor_id": request["requestor_id"],
        "target_user_id": request["target_user_id"],
        "state": display_state(request),
        "current_stage": request["current_stage"],
        "submitted_at": request["submitted_at"],
        "expires_at": request["expires_at"],
    }

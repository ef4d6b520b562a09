"""The ``Assignment`` aggregate: one per user and access package. It holds the user's access to the
package through grant periods (delivering, delivered, extended, expired or removed) and guards the
rule that a user has at most one open request for a package at a time."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain import errors
from domain.durations import parse_duration
from domain.ids import assignment_id as assignment_id_for

DELIVERING = "delivering"
DELIVERED = "delivered"
PARTIALLY_DELIVERED = "partially_delivered"
ACCESS_EXTENDED = "access_extended"
ACCESS_EXPIRED = "access_expired"
REMOVED = "removed"
ACTIVE_STATES = (DELIVERING, DELIVERED, PARTIALLY_DELIVERED, ACCESS_EXTENDED)

RESOURCE_PENDING = "pending"
RESOURCE_DELIVERED = "delivered"
RESOURCE_FAILED = "failed"


class Assignment(Aggregate):
    """``user_id`` x ``access_package_id``."""

    class Created(Aggregate.Created):
        user_id: str
        access_package_id: str
        actor: str

    class RequestOpened(Aggregate.Event):
        request_id: str
        request_type: str
        actor: str

        def apply(self, assignment: "Assignment") -> None:
            assignment.open_request_id = self.request_id

    class RequestClosed(Aggregate.Event):
        request_id: str
        outcome: str
        actor: str

        def apply(self, assignment: "Assignment") -> None:
            assignment.open_request_id = None

    class Delivering(Aggregate.Event):
        request_id: str
        policy_id: str
        policy_version: int
        resources: list
        start: datetime
        end: datetime | None
        expiration: dict
        extension: dict
        actor: str

        def apply(self, assignment: "Assignment") -> None:
            assignment.state = DELIVERING
            assignment.delivery_state = DELIVERING
            assignment.request_id = self.request_id
            assignment.policy_id = self.policy_id
            assignment.resources = [dict(r) for r in self.resources]
            assignment.resource_status = {r["id"]: RESOURCE_PENDING for r in self.resources}
            assignment.resource_errors = {}
            assignment.resource_attempts = {}
            assignment.start = self.start
            assignment.end = self.end
            assignment.expiration = self.expiration
            assignment.extension = self.extension
            assignment.expiry_reminded_for = None
            assignment.extension_request_ids = []

    class ResourceDelivered(Aggregate.Event):
        resource_id: str
        kind: str
        actor: str

        def apply(self, assignment: "Assignment") -> None:
            assignment.resource_status[self.resource_id] = RESOURCE_DELIVERED
            assignment.resource_errors.pop(self.resource_id, None)

    class ResourceFailed(Aggregate.Event):
        resource_id: str
        kind: str
        error: str
        attempt: int
        actor: str

        def apply(self, assignment: "Assignment") -> None:
            assignment.resource_status[self.resource_id] = RESOURCE_FAILED
            assignment.resource_errors[self.resource_id] = self.error
            assignment.resource_attempts[self.resource_id] = self.attempt

    class Delivered(Aggregate.Event):
        actor: str

        def apply(self, assignment: "Assignment") -> None:
            assignment.delivery_state = DELIVERED
            if assignment.state in (DELIVERING, PARTIALLY_DELIVERED):
                assignment.state = DELIVERED

    class PartiallyDelivered(Aggregate.Event):
        failed_resources: list
        actor: str

        def apply(self, assignment: "Assignment") -> None:
            assignment.delivery_state = PARTIALLY_DELIVERED
            if assignment.state == DELIVERING:
                assignment.state = PARTIALLY_DELIVERED

    class Extended(Aggregate.Event):
        request_id: str
        previous_end: datetime | None
        end: datetime | None
        actor: str

        def apply(self, assignment: "Assignment") -> None:
            assignment.state = ACCESS_EXTENDED
            assignment.end = self.end
            assignment.extension_request_ids.append(self.request_id)

    class ExpiryReminded(Aggregate.Event):
        end: datetime
        actor: str

        def apply(self, assignment: "Assignment") -> None:
            assignment.expiry_reminded_for = self.end

    class AccessExpired(Aggregate.Event):
        end: datetime
        actor: str

        def apply(self, assignment: "Assignment") -> None:
            assignment.state = ACCESS_EXPIRED
            assignment.ended_at = self.timestamp

    class Removed(Aggregate.Event):
        reason: str | None
        request_id: str | None
        actor: str

        def apply(self, assignment: "Assignment") -> None:
            assignment.state = REMOVED
            assignment.ended_at = self.timestamp

    def __init__(self, user_id: str, access_package_id: str, actor: str) -> None:
        self.user_id = user_id
        self.access_package_id = access_package_id
        self.open_request_id: str | None = None
        self.state: str | None = None
        # how far delivery got, kept apart from the state (an extended assignment may still be
        # retrying a failed resource)
        self.delivery_state: str | None = None
        self.request_id: str | None = None
        self.policy_id: str | None = None
        self.resources: list[dict] = []
        self.resource_status: dict[str, str] = {}
        self.resource_errors: dict[str, str] = {}
        self.resource_attempts: dict[str, int] = {}
        self.start: datetime | None = None
        self.end: datetime | None = None
        self.ended_at: datetime | None = None
        self.expiration: dict = {}
        self.extension: dict = {}
        self.expiry_reminded_for: datetime | None = None
        self.extension_request_ids: list[str] = []

    @classmethod
    def id_for(cls, user_id: str, access_package_id: str) -> UUID:
        return assignment_id_for(user_id, access_package_id)

    @classmethod
    def create(cls, *, user_id: str, access_package_id: str, actor: str, now: datetime) -> "Assignment":
        return cls._create(
            cls.Created,
            id=cls.id_for(user_id, access_package_id),
            user_id=user_id,
            access_package_id=access_package_id,
            actor=actor,
            timestamp=now,
        )

    # --- queries -----------------------------------------------------------------------------

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    def pending_resources(self) -> list[dict]:
        """Resources not yet delivered (never tried, or failed and to be retried)."""
        return [r for r in self.resources if self.resource_status.get(r["id"]) != RESOURCE_DELIVERED]

    def delivered_resources(self) -> list[dict]:
        return [r for r in self.resources if self.resource_status.get(r["id"]) == RESOURCE_DELIVERED]

    def grants_from(self, request_id: str) -> bool:
        """Does the access held now come from (or was it extended by) ``request_id``?"""
        return self.is_active and (request_id == self.request_id or request_id in self.extension_request_ids)

    # --- the open-request guard --------------------------------------------------------------

    def check_no_open_request(self) -> None:
        """At most one open request per user and package."""
        if self.open_request_id is not None:
            raise errors.OpenRequestExists(
                f"{self.user_id} already has an open request for {self.access_package_id}",
                request_id=self.open_request_id,
            )

    def check_no_pending_extension(self) -> None:
        """One open extension at a time: an extension waiting for approval blocks another."""
        if self.open_request_id is not None:
            raise errors.ExtensionAlreadyRequested(
                "an extension of this access is already waiting for approval; "
                "wait for its decision (or cancel it) before asking again",
                request_id=self.open_request_id,
            )

    def open_request(self, *, request_id: str, request_type: str, actor: str, now: datetime) -> None:
        self.check_no_open_request()
        self.trigger_event(self.RequestOpened, request_id=request_id, request_type=request_type, actor=actor, timestamp=now)

    def close_request(self, *, request_id: str, outcome: str, actor: str, now: datetime) -> None:
        if self.open_request_id == request_id:
            self.trigger_event(self.RequestClosed, request_id=request_id, outcome=outcome, actor=actor, timestamp=now)

    # --- delivery ----------------------------------------------------------------------------

    def start_delivery(
        self,
        *,
        request_id: str,
        policy_id: str,
        policy_version: int,
        resources: list[dict],
        start: datetime,
        end: datetime | None,
        expiration: dict,
        extension: dict,
        actor: str,
        now: datetime,
    ) -> None:
        if self.is_active:
            raise errors.AlreadyAssigned(
                f"{self.user_id} already holds {self.access_package_id}", assignment_id=str(self.id)
            )
        self.trigger_event(
            self.Delivering,
            request_id=request_id,
            policy_id=policy_id,
            policy_version=policy_version,
            resources=[{"id": r["id"], "kind": r["kind"]} for r in resources],
            start=start,
            end=end,
            expiration=expiration,
            extension=extension,
            actor=actor,
            timestamp=now,
        )

    def check_started(self, now: datetime) -> None:
        """Access requested to start later is not delivered before its start."""
        if self.start is not None and now < self.start:
            raise errors.NotYetDue(
                f"access starts at {self.start.isoformat()}; it is delivered then", due_at=self.start.isoformat()
            )

    def resource(self, resource_id: str) -> dict:
        if not self.is_active:
            raise errors.DeliveryNotInProgress(
                f"assignment is {self.state or 'not delivered'}; nothing is being delivered", state=self.state
            )
        for resource in self.resources:
            if resource["id"] == resource_id:
                return resource
        raise errors.UnknownResource(f"{resource_id!r} is not a resource of this assignment", resource_id=resource_id)

    def record_resource_delivered(self, resource_id: str, *, actor: str, now: datetime) -> bool:
        resource = self.resource(resource_id)
        if self.resource_status[resource_id] == RESOURCE_DELIVERED:
            return False
        self.trigger_event(self.ResourceDelivered, resource_id=resource_id, kind=resource["kind"], actor=actor, timestamp=now)
        return True

    def record_resource_failed(self, resource_id: str, *, error: str, actor: str, now: datetime) -> None:
        resource = self.resource(resource_id)
        attempt = self.resource_attempts.get(resource_id, 0) + 1
        self.trigger_event(
            self.ResourceFailed,
            resource_id=resource_id,
            kind=resource["kind"],
            error=error,
            attempt=attempt,
            actor=actor,
            timestamp=now,
        )

    def complete_delivery(self, *, actor: str, now: datetime) -> bool:
        """Delivered when every resource is; Partially Delivered when some failed. False: no change."""
        if not self.is_active:
            raise errors.DeliveryNotInProgress(
                f"assignment is {self.state or 'not delivered'}; nothing is being delivered", state=self.state
            )
        statuses = self.resource_status
        if any(status == RESOURCE_PENDING for status in statuses.values()):
            raise errors.DeliveryNotInProgress("some resources have not been attempted yet")
        failed = sorted(rid for rid, status in statuses.items() if status == RESOURCE_FAILED)
        if not failed:
            if self.delivery_state == DELIVERED:
                return False
            self.trigger_event(self.Delivered, actor=actor, timestamp=now)
            return True
        if self.delivery_state == PARTIALLY_DELIVERED:
            return False
        self.trigger_event(self.PartiallyDelivered, failed_resources=failed, actor=actor, timestamp=now)
        return True

    # --- after delivery ----------------------------------------------------------------------

    def _require_active(self) -> None:
        if not self.is_active:
            raise errors.AccessNotActive(
                f"{self.user_id} does not hold {self.access_package_id} (assignment is {self.state or 'not delivered'})",
                state=self.state,
            )

    def extend(self, *, request_id: str, end: datetime | None, actor: str, now: datetime) -> None:
        self._require_active()
        if self.end is not None and now >= self.end:
            raise errors.AccessNotActive("access has already ended", end=self.end.isoformat())
        self.trigger_event(self.Extended, request_id=request_id, previous_end=self.end, end=end, actor=actor, timestamp=now)

    def remind_expiry(self, *, now: datetime, actor: str = "system") -> None:
        """Tells the user access ends soon, where the policy allows an extension."""
        self._require_active()
        if not self.extension.get("allowed") or self.end is None:
            raise errors.ExtensionNotAllowed("this access cannot be extended, so no reminder is sent")
        if self.expiry_reminded_for == self.end:
            raise errors.AlreadyReminded("the user was already reminded that this access ends", end=self.end.isoformat())
        if now >= self.end:
            raise errors.AccessNotActive("access has already ended: it expires, the user is not reminded", end=self.end.isoformat())
        due = self.expiry_reminder_at
        if due is not None and now < due:
            raise errors.NotYetDue(f"the expiry reminder is due at {due.isoformat()}", due_at=due.isoformat())
        self.trigger_event(self.ExpiryReminded, end=self.end, actor=actor, timestamp=now)

    @property
    def expiry_reminder_at(self) -> datetime | None:
        before = self.extension.get("reminder_before")
        if self.end is None or not self.extension.get("allowed"):
            return None
        return self.end - parse_duration(before) if before else self.end

    def expire(self, *, now: datetime, actor: str = "system") -> None:
        self._require_active()
        if self.end is None:
            raise errors.NotYetDue("this access never ends")
        if now < self.end:
            raise errors.NotYetDue(f"this access ends at {self.end.isoformat()}", due_at=self.end.isoformat())
        self.trigger_event(self.AccessExpired, end=self.end, actor=actor, timestamp=now)

    def remove(self, *, reason: str | None, request_id: str | None, actor: str, now: datetime) -> None:
        self._require_active()
        self.trigger_event(self.Removed, reason=reason, request_id=request_id, actor=actor, timestamp=now)

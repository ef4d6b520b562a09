"""Resource kinds: how access to one resource of a package is granted and withdrawn.

A kind is a small object with a name and two methods. Kinds kept inside the event store (``group``)
return the aggregates they changed, which the application saves in the same transaction as the
assignment's record of the outcome. Kinds that reach outside systems (webhooks and other
connectors) do their I/O in ``grant``/``withdraw``, return no aggregates, and raise
:class:`DeliveryFailed` when the outside system refuses or cannot be reached; the failure is
recorded and retried.

A grant is attempted again when the write that records its outcome loses a race with another
writer (and when delivery is resumed after a crash), so a kind must be idempotent: granting what
is already granted, or withdrawing what is already gone, succeeds and changes nothing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import ClassVar, Protocol, Sequence

from eventsourcing.domain import Aggregate

from domain import errors
from domain.membership import Membership


class DeliveryFailed(Exception):
    """The resource could not be granted or withdrawn now; the message is recorded."""


class Directory(Protocol):
    """What a resource kind may read from the application."""

    def membership(self, group_id: str, user_id: str, *, now: datetime) -> Membership:
        """``user_id``'s membership of ``group_id`` (new, if none is recorded); raises
        ``UnknownGroup`` when there is no such group."""


class ResourceKind(ABC):
    kind: ClassVar[str]

    @abstractmethod
    def grant(
        self, directory: Directory, *, user_id: str, resource_id: str, assignment_id: str, now: datetime
    ) -> Sequence[Aggregate]:
        """Gives ``user_id`` access to the resource; returns the aggregates it changed."""

    @abstractmethod
    def withdraw(
        self, directory: Directory, *, user_id: str, resource_id: str, assignment_id: str, now: datetime
    ) -> Sequence[Aggregate]:
        """Takes the access granted through ``assignment_id`` away again."""


class GroupMembership(ResourceKind):
    """Membership of a directory group, recorded on the member's own ``Membership`` aggregate:
    a grant touches that member only, whatever the size of the group."""

    kind = "group"
    actor = "delivery"

    def _load(self, directory: Directory, group_id: str, user_id: str, now: datetime) -> Membership:
        try:
            return directory.membership(group_id, user_id, now=now)
        except errors.UnknownGroup as error:
            raise DeliveryFailed(f"group {group_id!r} does not exist") from error

    def grant(self, directory, *, user_id, resource_id, assignment_id, now):
        membership = self._load(directory, resource_id, user_id, now)
        changed = membership.grant(assignment_id=assignment_id, actor=self.actor, now=now)
        return [membership] if changed else []

    def withdraw(self, directory, *, user_id, resource_id, assignment_id, now):
        membership = self._load(directory, resource_id, user_id, now)
        changed = membership.withdraw(assignment_id=assignment_id, actor=self.actor, now=now)
        return [membership] if changed else []


def default_resource_kinds() -> dict[str, ResourceKind]:
    return {GroupMembership.kind: GroupMembership()}

"""Membership of a group granted by access: one ``Membership`` aggregate per group and user.

Why one aggregate per group x user (and not events on the ``Group``): granting or withdrawing one
member then loads and writes only that member's short history, so a grant costs the same in a
group of 100 as in a group of 100,000, and concurrent grants into one group never collide (their
aggregates differ). The id is derived from the group and the user, so two writers granting the same
member at once collide on its version, and the loser re-checks.

Who is in a group (for approver resolution, policy scopes and incompatible groups) is answered by a
:class:`MemberIndex`, which follows the log: no aggregate is replayed per question.

Logs written before this model recorded grants as ``Group.MembershipGranted`` /
``Group.MembershipWithdrawn`` events on the group. They keep their meaning: the index counts them,
and a member's ``Membership`` aggregate, when first created, carries over the grants those events
left open (``Created.carried_over``), so that withdrawing one of them is recorded on the member's
aggregate like any other.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Protocol
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.ids import membership_id


class Membership(Aggregate):
    """``user_id`` in ``group_id`` through the assignments in ``sources`` (one per package that
    grants the group: the user stays a member until the last one ends)."""

    class Created(Aggregate.Created):
        group_id: str
        user_id: str
        carried_over: list  # assignment ids granted by the group's legacy events, still open
        actor: str

    class Granted(Aggregate.Event):
        group_id: str
        user_id: str
        assignment_id: str
        actor: str

        def apply(self, membership: "Membership") -> None:
            membership.sources.append(self.assignment_id)

    class Withdrawn(Aggregate.Event):
        group_id: str
        user_id: str
        assignment_id: str
        actor: str

        def apply(self, membership: "Membership") -> None:
            membership.sources.remove(self.assignment_id)

    def __init__(self, group_id: str, user_id: str, carried_over: list, actor: str) -> None:
        self.group_id = group_id
        self.user_id = user_id
        self.sources: list[str] = list(carried_over)

    @classmethod
    def id_for(cls, group_id: str, user_id: str) -> UUID:
        return membership_id(group_id, user_id)

    @classmethod
    def create(
        cls, *, group_id: str, user_id: str, carried_over: Iterable[str] = (), actor: str, now: datetime
    ) -> "Membership":
        return cls._create(
            cls.Created,
            id=cls.id_for(group_id, user_id),
            group_id=group_id,
            user_id=user_id,
            carried_over=sorted(carried_over),
            actor=actor,
            timestamp=now,
        )

    @property
    def is_member(self) -> bool:
        return bool(self.sources)

    def grant(self, *, assignment_id: str, actor: str, now: datetime) -> bool:
        """Records the grant through ``assignment_id``; False (nothing recorded) when it is held."""
        if assignment_id in self.sources:
            return False
        self.trigger_event(
            self.Granted, group_id=self.group_id, user_id=self.user_id, assignment_id=assignment_id,
            actor=actor, timestamp=now,
        )
        return True

    def withdraw(self, *, assignment_id: str, actor: str, now: datetime) -> bool:
        """Ends the grant through ``assignment_id``; False (nothing recorded) when it is not held."""
        if assignment_id not in self.sources:
            return False
        self.trigger_event(
            self.Withdrawn, group_id=self.group_id, user_id=self.user_id, assignment_id=assignment_id,
            actor=actor, timestamp=now,
        )
        return True


# --- who is in a group ---------------------------------------------------------------------------


class MemberIndex(Protocol):
    """Granted membership (directory members are the group's settings), as recorded up to the
    moment of the question."""

    def granted_members(self, group_id: str) -> list[str]:
        """Users granted ``group_id`` now, sorted."""

    def sources(self, group_id: str, user_id: str) -> list[str]:
        """The assignments through which ``user_id`` holds ``group_id`` now."""

    def granted_members_at(self, group_id: str, at: datetime) -> list[str]:
        """Users who held ``group_id`` through access at the moment ``at``, sorted."""


GROUP_TOPIC = "domain.group:Group"
MEMBERSHIP_TOPIC = "domain.membership:Membership"
INDEX_TOPICS = (
    f"{GROUP_TOPIC}.Registered",
    f"{GROUP_TOPIC}.MembershipGranted",  # logs written before Membership aggregates
    f"{GROUP_TOPIC}.MembershipWithdrawn",
    f"{MEMBERSHIP_TOPIC}.Granted",
    f"{MEMBERSHIP_TOPIC}.Withdrawn",
)


@dataclass
class _Grant:
    assignment_id: str
    granted_at: datetime
    withdrawn_at: datetime | None = None


@dataclass
class _Group:
    current: dict[str, dict[str, datetime]] = field(default_factory=dict)  # user -> assignment -> granted at
    periods: dict[str, list[_Grant]] = field(default_factory=dict)  # user -> every grant, in log order


class LogMemberIndex:
    """A :class:`MemberIndex` that follows the application's notification log.

    Each question first reads the membership events recorded since the last one (one query,
    filtered by topic), so the answer includes every grant committed before it was asked, by any
    process. The first question of a process reads all membership events of the log once."""

    PAGE = 10_000

    def __init__(self, app: Any) -> None:
        self._app = app
        self._position = 0
        self._groups: dict[str, _Group] = {}
        self._group_keys: dict[UUID, str] = {}  # legacy events name their group by aggregate id
        self._lock = threading.Lock()

    def granted_members(self, group_id: str) -> list[str]:
        with self._lock:
            self._catch_up()
            group = self._groups.get(group_id)
            return sorted(group.current) if group else []

    def sources(self, group_id: str, user_id: str) -> list[str]:
        with self._lock:
            self._catch_up()
            group = self._groups.get(group_id)
            return sorted(group.current.get(user_id, {})) if group else []

    def granted_members_at(self, group_id: str, at: datetime) -> list[str]:
        with self._lock:
            self._catch_up()
            group = self._groups.get(group_id)
            if group is None:
                return []
            return sorted(
                user for user, grants in group.periods.items()
                if any(g.granted_at <= at and (g.withdrawn_at is None or g.withdrawn_at > at) for g in grants)
            )

    def _catch_up(self) -> None:
        """Reads the membership events up to the log head taken first, and records that head as
        the position: with the topic filter, recording only the last membership event read would
        leave the position behind the head, and every question would read again all the events
        recorded since (the writers are serialised, so nothing appears below a head once read)."""
        recorder = self._app.recorder
        head = recorder.max_notification_id() or 0
        while self._position < head:
            page = recorder.select_notifications(
                start=self._position, limit=self.PAGE, stop=head, topics=INDEX_TOPICS, inclusive_of_start=False
            )
            for notification in page:
                self._apply(self._app.mapper.to_domain_event(notification))
                self._position = notification.id
            if len(page) < self.PAGE:
                self._position = head

    def _apply(self, event: Any) -> None:
        name = type(event).__qualname__
        if name == "Group.Registered":
            self._group_keys[event.originator_id] = event.key
            return
        if name.startswith("Group."):
            group_id = self._group_keys.get(event.originator_id)
            if group_id is None:
                return
        else:
            group_id = event.group_id
        group = self._groups.setdefault(group_id, _Group())
        held = group.current.setdefault(event.user_id, {})
        if name.endswith("Granted"):
            held[event.assignment_id] = event.timestamp
            group.periods.setdefault(event.user_id, []).append(_Grant(event.assignment_id, event.timestamp))
        else:
            held.pop(event.assignment_id, None)
            for grant in group.periods.get(event.user_id, []):
                if grant.assignment_id == event.assignment_id and grant.withdrawn_at is None:
                    grant.withdrawn_at = event.timestamp
                    break
        if not held:
            group.current.pop(event.user_id, None)

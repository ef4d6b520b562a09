"""Directory groups. Members come from the directory (the tenant file) or from delivered access
(an assignment whose package has this group as a resource). Both are recorded as events, so who was
in a group is answerable for any moment."""

from __future__ import annotations

from datetime import datetime

from eventsourcing.domain import Aggregate

from domain.configuration import ConfigurationItem


class Group(ConfigurationItem):
    """``members`` (directory members) in the settings; granted members by assignment."""

    KIND = "group"

    class MembershipGranted(Aggregate.Event):
        user_id: str
        assignment_id: str
        actor: str

        def apply(self, group: "Group") -> None:
            group.grants.setdefault(self.user_id, []).append(self.assignment_id)

    class MembershipWithdrawn(Aggregate.Event):
        user_id: str
        assignment_id: str
        actor: str

        def apply(self, group: "Group") -> None:
            sources = group.grants.get(self.user_id, [])
            sources.remove(self.assignment_id)
            if not sources:
                group.grants.pop(self.user_id, None)

    def __init__(self, key: str, settings: dict, actor: str) -> None:
        super().__init__(key, settings, actor)
        self.grants: dict[str, list[str]] = {}

    @property
    def directory_members(self) -> list[str]:
        return list(self.settings.get("members", []))

    @property
    def members(self) -> list[str]:
        """Everyone in the group now: directory members first, then granted members, no repeats."""
        seen = dict.fromkeys(self.directory_members)
        seen.update(dict.fromkeys(sorted(self.grants)))
        return list(seen)

    def has_member(self, user_id: str) -> bool:
        return user_id in self.directory_members or user_id in self.grants

    def grant_membership(self, user_id: str, *, assignment_id: str, actor: str, now: datetime) -> bool:
        if assignment_id in self.grants.get(user_id, []):
            return False
        self.trigger_event(
            self.MembershipGranted, user_id=user_id, assignment_id=assignment_id, actor=actor, timestamp=now
        )
        return True

    def withdraw_membership(self, user_id: str, *, assignment_id: str, actor: str, now: datetime) -> bool:
        if assignment_id not in self.grants.get(user_id, []):
            return False
        self.trigger_event(
            self.MembershipWithdrawn, user_id=user_id, assignment_id=assignment_id, actor=actor, timestamp=now
        )
        return True

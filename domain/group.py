"""Directory groups. Members come from the directory (the tenant file, recorded in the group's
settings) or from delivered access (an assignment whose package has this group as a resource,
recorded on :mod:`domain.membership`). Both are events, so who was in a group is answerable for any
moment."""

from __future__ import annotations

from eventsourcing.domain import Aggregate

from domain.configuration import ConfigurationItem


class Group(ConfigurationItem):
    """A directory group: ``members`` (directory members) in the settings.

    Members granted by access are recorded on one :class:`~domain.membership.Membership` aggregate
    per group and user. ``MembershipGranted`` and ``MembershipWithdrawn`` are the events logs
    written before that model recorded on the group itself: still read (the member index counts
    them), no longer written."""

    KIND = "group"

    class MembershipGranted(Aggregate.Event):
        """A grant recorded on the group (logs before Membership aggregates)."""

        user_id: str
        assignment_id: str
        actor: str

        def apply(self, group: "Group") -> None:
            """The member index counts it; the group's own state (its settings) is unchanged."""

    class MembershipWithdrawn(Aggregate.Event):
        """A withdrawal recorded on the group (logs before Membership aggregates)."""

        user_id: str
        assignment_id: str
        actor: str

        def apply(self, group: "Group") -> None:
            """The member index counts it; the group's own state (its settings) is unchanged."""

    @property
    def directory_members(self) -> list[str]:
        return list(self.settings.get("members", []))

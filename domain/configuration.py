"""The event-sourced configuration: every catalog, package, policy, user and group is an aggregate
whose settings change only through recorded events, so an auditor can tell which version of a
policy was in force for any decision."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.ids import configuration_id


class ConfigurationItem(Aggregate):
    """A configured item named by its key (``finance``, ``alice``), with a dictionary of settings."""

    KIND = "item"  # no annotation: an annotated aggregate becomes a dataclass

    class Registered(Aggregate.Created):
        key: str
        settings: dict
        actor: str

    class Reconfigured(Aggregate.Event):
        settings: dict
        actor: str

        def apply(self, aggregate: "ConfigurationItem") -> None:
            aggregate.settings = self.settings

    def __init__(self, key: str, settings: dict, actor: str) -> None:
        self.key = key
        self.settings = settings

    @classmethod
    def id_for(cls, key: str) -> UUID:
        return configuration_id(cls.KIND, key)

    @classmethod
    def as_configured(cls, key: str, settings: dict[str, Any]):
        """The item as configured, from its key and settings as a read model keeps them, to ask its
        rules (``allows_requestor``, ``check_open_to``) and readings (``name``, ``questions``)
        without replaying its events: the same rules a command applies. Read-only: it has no id,
        version or pending events, and is never changed or saved."""
        item = object.__new__(cls)
        item.key = key
        item.settings = settings
        return item

    @classmethod
    def register(cls, key: str, settings: dict[str, Any], *, actor: str, now: datetime):
        return cls._create(
            cls.Registered, id=cls.id_for(key), key=key, settings=settings, actor=actor, timestamp=now
        )

    def reconfigure(self, settings: dict[str, Any], *, actor: str, now: datetime) -> bool:
        """Records new settings; returns False (and records nothing) when they are unchanged."""
        if settings == self.settings:
            return False
        self.trigger_event(self.Reconfigured, settings=settings, actor=actor, timestamp=now)
        return True

"""Every kind of event the domain records, by type name (``AccessRequest.Submitted``), with the
topics the log stores it under (``domain.access_request:AccessRequest.Submitted``)."""

from __future__ import annotations

import importlib
import inspect

from eventsourcing.domain import Aggregate, DomainEvent

MODULES = (
    "access_package", "access_request", "assignment", "assignment_policy", "catalog", "group", "membership", "user",
)


def _event_types() -> dict[str, tuple[str, ...]]:
    types: dict[str, set[str]] = {}
    for name in MODULES:
        module = importlib.import_module(f"domain.{name}")
        for outer in vars(module).values():
            if not (inspect.isclass(outer) and issubclass(outer, Aggregate) and outer.__module__ == module.__name__):
                continue
            for attribute in dir(outer):
                inner = getattr(outer, attribute)
                if (
                    inspect.isclass(inner)
                    and issubclass(inner, DomainEvent)
                    and attribute not in ("Event", "Snapshot")
                    and inner.__module__.startswith("domain.")  # not the library's own bases
                ):
                    types.setdefault(f"{outer.__name__}.{attribute}", set()).add(f"{module.__name__}:{outer.__name__}.{attribute}")
    return {kind: tuple(sorted(topics)) for kind, topics in sorted(types.items())}


EVENT_TYPES: dict[str, tuple[str, ...]] = _event_types()

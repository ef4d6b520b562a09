"""Unit fixtures: the application in memory (``eventsourcing.popo``), a manual clock, and a
builder for the standard tenant (see ``builders.py``)."""

from __future__ import annotations

from typing import Callable
from uuid import UUID

import pytest

from tests.unit.builders import START, FlakyWebhook, kinds_with, standard_items
from domain.application import EntitlementsApplication, Receipt
from domain.clock import ManualClock
from domain.resources import ResourceKind


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def webhook() -> FlakyWebhook:
    """The fake outside system behind resources of kind ``webhook``: down for its first grant."""
    return FlakyWebhook(failures=1)


@pytest.fixture
def resource_kinds(webhook) -> dict[str, ResourceKind]:
    """Group membership, and the fake webhook; override in a test module for other kinds."""
    return kinds_with(webhook)


@pytest.fixture
def app(clock, resource_kinds):
    application = EntitlementsApplication(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock, resource_kinds=resource_kinds
    )
    yield application
    application.close()


@pytest.fixture
def tenant(app) -> Callable[..., EntitlementsApplication]:
    """``tenant(**overrides)`` configures the standard tenant, with overrides, and returns the app."""

    def configure(**overrides) -> EntitlementsApplication:
        app.configure(standard_items(**overrides), actor="loader")
        return app

    return configure


@pytest.fixture
def submit(app) -> Callable[..., Receipt]:
    """``submit(**kwargs)``: alice asks for ``pkg`` unless told otherwise."""

    def submit_(**kwargs) -> Receipt:
        kwargs.setdefault("requestor_id", "alice")
        kwargs.setdefault("access_package_id", "pkg")
        return app.submit_request(**kwargs)

    return submit_


@pytest.fixture
def approve(app) -> Callable[..., Receipt]:
    def approve_(request_id: str, approver_id: str = "bob", reason: str | None = "ok") -> Receipt:
        return app.decide(request_id=request_id, approver_id=approver_id, decision="approve", reason=reason)

    return approve_


@pytest.fixture
def granted(tenant, submit, approve, app) -> Callable[..., str]:
    """``granted(**overrides)``: configures the tenant, alice requests ``pkg`` and bob approves;
    returns the assignment id."""

    def grant(**overrides) -> str:
        tenant(**overrides)
        receipt = submit()
        if receipt.state == "pending_approval":
            approve(receipt.id)
        return str(app.find_assignment("alice", "pkg").id)

    return grant


@pytest.fixture
def event_names(app) -> Callable[[str | UUID], list[str]]:
    """The type names of an aggregate's events, in order."""

    def names(aggregate_id: str | UUID) -> list[str]:
        return [type(event).__name__ for event in app.events.get(UUID(str(aggregate_id)))]

    return names


@pytest.fixture
def events(app) -> Callable[[str | UUID], list]:
    def get(aggregate_id: str | UUID) -> list:
        return list(app.events.get(UUID(str(aggregate_id))))

    return get

"""Integration fixtures: the application on a fresh database of each backend (``database_url``,
from ``tests/conftest.py``), with a manual clock."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from domain.clock import ManualClock
from entitlements.bootstrap import build_application, build_services
from entitlements.cli import DEMO_TENANT
from entitlements.settings import Settings
from entitlements.tenant import load_tenant

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


def _opener(build, close):
    """A fixture's function opening (another) ``build()``, as another process would; all that
    were opened are closed at the end."""
    opened = []

    def open_(**kwargs):
        opened.append(build(**kwargs))
        return opened[-1]

    return open_, lambda: [close(item) for item in opened]


@pytest.fixture
def open_app(database_url, clock):
    """Opens (another) application on the test database."""
    open_, close_all = _opener(lambda: build_application(Settings(database_url=database_url), clock=clock), lambda app: app.close())
    yield open_
    close_all()


@pytest.fixture
def open_services(database_url, clock):
    """Opens (another) set of services (application, read models, scheduler) on the test database,
    with settings of ``Settings`` given as keywords."""
    open_, close_all = _opener(
        lambda **settings: build_services(Settings(database_url=database_url, **settings), clock=clock),
        lambda services: services.close(),
    )
    yield open_
    close_all()


@pytest.fixture
def app(open_app):
    return open_app()


@pytest.fixture
def demo_app(app):
    load_tenant(app, DEMO_TENANT)
    return app

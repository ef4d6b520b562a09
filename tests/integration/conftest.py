"""Integration fixtures: the application on a fresh database of each backend (``database_url``,
from ``tests/conftest.py``), with a manual clock."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from domain.clock import ManualClock
from entitlements.bootstrap import build_application
from entitlements.cli import DEMO_TENANT
from entitlements.settings import Settings
from entitlements.tenant import load_tenant

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def open_app(database_url, clock):
    """Opens (another) application on the test database; all are closed at the end."""
    opened = []

    def open_():
        app = build_application(Settings(database_url=database_url), clock=clock)
        opened.append(app)
        return app

    yield open_
    for app in opened:
        app.close()


@pytest.fixture
def app(open_app):
    return open_app()


@pytest.fixture
def demo_app(app):
    load_tenant(app, DEMO_TENANT)
    return app

"""The composition root: builds the application from settings, with its clock and resource kinds."""

from __future__ import annotations

from domain.application import EntitlementsApplication
from domain.clock import Clock, ManualClock, SystemClock
from domain.resources import ResourceKind, default_resource_kinds
from entitlements.persistence import database_from_url
from entitlements.settings import ConfigurationError, Settings


def build_clock(settings: Settings) -> Clock:
    if settings.clock == "manual":
        return ManualClock(SystemClock().now())
    return SystemClock()


def build_application(
    settings: Settings,
    *,
    clock: Clock | None = None,
    resource_kinds: dict[str, ResourceKind] | None = None,
) -> EntitlementsApplication:
    database = database_from_url(settings.database_url)
    try:
        return EntitlementsApplication(
            database.library_env,
            clock=clock or build_clock(settings),
            resource_kinds=resource_kinds if resource_kinds is not None else default_resource_kinds(),
        )
    except Exception as error:  # the library raises its own errors for unreachable databases
        if type(error).__module__.startswith(("eventsourcing", "psycopg", "sqlite3")):
            raise ConfigurationError(f"cannot open the database {settings.database_url}: {error}") from error
        raise

"""The composition root: builds the application from settings, with its clock and resource kinds."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import psycopg

from domain.application import EntitlementsApplication
from domain.clock import Clock, SystemClock
from domain.resources import ResourceKind
from entitlements.audit import load_signer
from entitlements.persistence import Database, database_from_url
from entitlements.scheduler import Scheduler
from entitlements.settings import ConfigurationError, Settings
from entitlements.sign_in import SignInStore, session_secret
from entitlements.stored_clock import StoredClock
from entitlements.tokens import TokenStore
from notifier.sender import Sender, SmtpServer
from projections.log_tree import LogTree
from projections.read_models import ReadModels
from projections.store import ViewStore

# Any fixed number: processes starting at once take turns creating the tables.
SCHEMA_LOCK_KEY = 0x656E7469746C  # "entitl"


def build_application(
    settings: Settings,
    *,
    clock: Clock | None = None,
    resource_kinds: dict[str, ResourceKind] | None = None,
) -> EntitlementsApplication:
    """The application alone, with the system clock unless given one (the manual clock of
    ``ENTITLEMENTS_CLOCK=manual`` lives with the read models: :func:`build_services` sets it)."""
    database = database_from_url(settings.database_url)
    try:
        with _schema_lock(database):
            return EntitlementsApplication(
                database.library_env,
                clock=clock or SystemClock(),
                resource_kinds=resource_kinds,
            )
    except Exception as error:  # the library and drivers raise their own errors for unusable databases
        if type(error).__module__.startswith(("eventsourcing", "psycopg", "sqlite3")):
            raise ConfigurationError(f"cannot open the database {settings.database_url}: {error}") from error
        raise


@contextmanager
def _schema_lock(database: Database) -> Iterator[None]:
    """On PostgreSQL, several processes (web workers, projections) may start at once; the library
    creates its tables on start-up, and concurrent ``CREATE OR REPLACE`` statements fail with
    "tuple concurrently updated". An advisory lock makes them take turns."""
    if database.is_sqlite:
        yield
        return
    env = database.library_env
    with psycopg.connect(
        dbname=env["POSTGRES_DBNAME"],
        host=env["POSTGRES_HOST"],
        port=env["POSTGRES_PORT"],
        user=env["POSTGRES_USER"],
        password=env["POSTGRES_PASSWORD"] or None,
        connect_timeout=int(env["POSTGRES_CONNECT_TIMEOUT"]),
        autocommit=True,
    ) as connection:
        connection.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
        try:
            yield
        finally:
            connection.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_KEY,))


@dataclass
class Services:
    """Everything a process of entitlements works with, built from one set of settings."""

    settings: Settings
    app: EntitlementsApplication
    store: ViewStore
    read_models: ReadModels
    tokens: TokenStore
    scheduler: Scheduler  # one per process: it runs one tick at a time
    log_tree: LogTree  # the log's Merkle tree and signed checkpoints
    sign_in: SignInStore  # the portal's sign-in links and sessions

    def secret_key(self) -> str:
        """``ENTITLEMENTS_SECRET_KEY``, else the one generated and kept in ``secret_key_file``."""
        return session_secret(self.settings.secret_key, self.settings.secret_key_file)

    def sender(self) -> Sender | None:
        """The outbox's SMTP sender, or None when no ``ENTITLEMENTS_SMTP_URL`` is set."""
        if not self.settings.smtp_url:
            return None
        server = SmtpServer.from_url(self.settings.smtp_url)
        return Sender(self.store, server, self.app.clock, mail_from=self.settings.mail_from)

    def close(self) -> None:
        self.store.close()
        self.app.close()


def build_services(
    settings: Settings,
    *,
    clock: Clock | None = None,
    resource_kinds: dict[str, ResourceKind] | None = None,
) -> Services:
    """The application, the read models over its log, the token store and the scheduler, on one
    database. With ``ENTITLEMENTS_CLOCK=manual`` (and no ``clock`` given) the application's clock
    is the deployment's manual clock, kept in the database."""
    app = build_application(settings, clock=clock, resource_kinds=resource_kinds)
    database = database_from_url(settings.database_url)
    store = ViewStore(database)
    try:
        with _schema_lock(database):
            if clock is None and settings.clock == "manual":
                app.clock = StoredClock(store, SystemClock().now())  # before anything asks the time
            read_models = ReadModels(
                app, store, base_url=settings.base_url, mail_domain=settings.mail_domain,
                notifier_horizon=settings.notifier_horizon,
            )
            tokens = TokenStore(store)
            sign_in = SignInStore(store)
            scheduler = Scheduler(app, read_models)
            log_tree = LogTree(
                read_models.audit_log, lambda: load_signer(settings.audit_key_file, settings.base_url), now=lambda: app.clock.now()
            )
    except Exception as error:
        app.close()
        store.close()
        if type(error).__module__.startswith(("psycopg", "sqlite3")):
            raise ConfigurationError(f"cannot open the database {settings.database_url}: {error}") from error
        raise
    return Services(settings=settings, app=app, store=store, read_models=read_models, tokens=tokens, scheduler=scheduler, log_tree=log_tree,
                    sign_in=sign_in)

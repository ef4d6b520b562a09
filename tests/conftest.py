"""Fixtures for every suite that talks to a database: the same cases run on SQLite and on PostgreSQL.

PostgreSQL tests create a database of their own and drop it afterwards. They skip, saying why,
when no server answers at ENTITLEMENTS_TEST_POSTGRES_URL (default
postgresql://postgres@127.0.0.1:5432/postgres), and fail instead when REQUIRE_POSTGRES=1.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

SERVER_URL = os.environ.get("ENTITLEMENTS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _postgres_unavailable() -> str | None:
    try:
        with psycopg.connect(SERVER_URL, connect_timeout=3):
            return None
    except psycopg.Error as error:
        return f"PostgreSQL is not reachable at {SERVER_URL}: {str(error).strip().splitlines()[0]}"


@pytest.fixture(scope="session")
def postgres_server() -> str:
    reason = _postgres_unavailable()
    if reason:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason} (REQUIRE_POSTGRES=1)")
        pytest.skip(reason)
    return SERVER_URL


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def fresh_database(request, directory, prefix: str = "entitlements_test"):
    """Yields the URL of a fresh, empty database of ``request.param``'s backend (a file under
    ``directory``, or a PostgreSQL database of its own, dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{directory}/entitlements.db"
        return
    server = request.getfixturevalue("postgres_server")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(server, name)
    finally:
        with psycopg.connect(server, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """A fresh, empty database of each backend."""
    yield from fresh_database(request, tmp_path)


@pytest.fixture
def mailbox():
    """A real SMTP server on loopback that keeps what it accepts (tests/mailbox.py)."""
    from tests.mailbox import running_mailbox

    yield from running_mailbox()

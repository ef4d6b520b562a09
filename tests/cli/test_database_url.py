"""ENTITLEMENTS_DATABASE_URL selects SQLite or PostgreSQL."""

from __future__ import annotations

import pytest

from entitlements.persistence import database_from_url
from entitlements.settings import ConfigurationError


def test_relative_sqlite_path_is_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    database = database_from_url("sqlite:///var/entitlements.db")
    assert database.is_sqlite and database.library_env["SQLITE_DBNAME"] == "var/entitlements.db"
    assert (tmp_path / "var").is_dir()


def test_absolute_sqlite_path_takes_four_slashes(tmp_path):
    database = database_from_url(f"sqlite:///{tmp_path}/events.db")
    assert database.library_env["SQLITE_DBNAME"] == f"{tmp_path}/events.db"


def test_sqlite_memory_database_is_shared_between_connections():
    assert "mode=memory" in database_from_url("sqlite:///:memory:").library_env["SQLITE_DBNAME"]


def test_postgresql_url_gives_the_library_its_connection_settings():
    env = database_from_url("postgresql://ops:s%40cret@db.internal:6543/entitlements?schema=tenant1").library_env
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"]) == ("ops", "s@cret")
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_DBNAME"]) == ("db.internal", "6543", "entitlements")
    assert env["POSTGRES_SCHEMA"] == "tenant1"


@pytest.mark.parametrize(
    "url, message",
    [
        ("mysql://x/y", "neither sqlite"),
        ("postgresql://host:5432/", "names no database"),
        ("postgresql://host:notaport/db", "invalid port"),
        ("sqlite://relative.db", "write sqlite:///relative/path.db"),
        ("postgresql://host/db?sslmode=require", "unsupported option 'sslmode'"),
        ("sqlite:///events.db?mode=ro", "takes no options"),
        ("postgresql://[::1/db", "is malformed"),
        ("sqlite:///events%00.db", "NUL"),
    ],
)
def test_malformed_database_url_is_refused_with_a_hint(url, message):
    with pytest.raises(ConfigurationError, match=message):
        database_from_url(url)

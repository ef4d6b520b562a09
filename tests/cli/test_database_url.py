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
    ],
)
def test_malformed_database_url_is_refused_with_a_hint(url, message):
    with pytest.raises(ConfigurationError, match=message):
        database_from_url(url)


def test_postgresql_option_other_than_schema_is_refused():
    with pytest.raises(ConfigurationError, match="unsupported option 'sslmode'"):
        database_from_url("postgresql://host/db?sslmode=require")


def test_sqlite_url_with_options_is_refused():
    with pytest.raises(ConfigurationError, match="takes no options"):
        database_from_url("sqlite:///events.db?mode=ro")


def test_url_that_cannot_be_parsed_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="is malformed"):
        database_from_url("postgresql://[::1/db")


def test_nul_in_sqlite_path_is_refused():
    with pytest.raises(ConfigurationError, match="NUL"):
        database_from_url("sqlite:///events%00.db")

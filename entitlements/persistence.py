"""``ENTITLEMENTS_DATABASE_URL`` -> the eventsourcing library's persistence settings."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from entitlements.settings import ConfigurationError
from projections.store import Database  # where events and read models live (defined beside its connections)


def database_from_url(url: str) -> Database:
    """``sqlite:///var/entitlements.db`` (relative), ``sqlite:////abs/file.db``, ``sqlite:///:memory:``,
    or ``postgresql://user:password@host:port/dbname`` (``?schema=NAME`` optional)."""
    try:
        parts = urlsplit(url)
    except ValueError as error:  # e.g. an unclosed [IPv6 address
        raise ConfigurationError(f"ENTITLEMENTS_DATABASE_URL {url!r} is malformed: {error}") from None
    if parts.scheme == "sqlite":
        return _sqlite(url, parts)
    if parts.scheme in ("postgresql", "postgres"):
        return _postgresql(url, parts)
    raise ConfigurationError(
        f"ENTITLEMENTS_DATABASE_URL {url!r} is neither sqlite:///PATH nor postgresql://user@host:port/db"
    )


def _sqlite(url: str, parts) -> Database:
    raw = unquote(parts.path)
    if parts.netloc or not raw.startswith("/") or raw == "/":
        raise ConfigurationError(f"ENTITLEMENTS_DATABASE_URL {url!r}: write sqlite:///relative/path.db or sqlite:////absolute/path.db")
    if parts.query:
        raise ConfigurationError(f"ENTITLEMENTS_DATABASE_URL {url!r}: a sqlite URL takes no options (?{parts.query})")
    if "\0" in raw:
        raise ConfigurationError(f"ENTITLEMENTS_DATABASE_URL {url!r}: the SQLite path contains a NUL character")
    name = raw[1:]
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_LOCK_TIMEOUT": "30"}
    if name == ":memory:":
        env["SQLITE_DBNAME"] = "file:entitlements?mode=memory&cache=shared"
        return Database("sqlite", env)
    path = Path(name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigurationError(f"cannot create the folder of the SQLite file {path}: {error.strerror}") from None
    env["SQLITE_DBNAME"] = str(path)
    return Database("sqlite", env, path=path)


def _postgresql(url: str, parts) -> Database:
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname:
        raise ConfigurationError(f"ENTITLEMENTS_DATABASE_URL {url!r} names no database (postgresql://user@host:port/DBNAME)")
    try:
        port = parts.port or 5432
    except ValueError:
        raise ConfigurationError(f"ENTITLEMENTS_DATABASE_URL {url!r} has an invalid port") from None
    query = parse_qs(parts.query, keep_blank_values=True)
    for option in query:
        if option != "schema":
            raise ConfigurationError(
                f"ENTITLEMENTS_DATABASE_URL {url!r}: unsupported option {option!r} (only ?schema=NAME is understood)"
            )
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": dbname,
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(port),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_CONNECT_TIMEOUT": "5",
        "POSTGRES_POOL_SIZE": "5",
        "POSTGRES_MAX_OVERFLOW": "10",
    }
    if "schema" in query:
        env["POSTGRES_SCHEMA"] = query["schema"][0]
    return Database("postgresql", env)

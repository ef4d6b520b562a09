"""Where read models live: the same database as the event log, reached through our own connections.

SQL in this package is written once with ``?`` placeholders and ``ON CONFLICT`` upserts, which both
SQLite (3.24+) and PostgreSQL understand; the PostgreSQL connection turns ``?`` into ``%s``.
JSON is stored as text, written with sorted keys, so that two rebuilds give identical rows.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Sequence

from entitlements.persistence import Database


def dumps(value: Any) -> str:
    """Canonical JSON: the same value always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class Transaction:
    """One open transaction on a view connection."""

    def __init__(self, cursor: Any, backend: str) -> None:
        self._cursor = cursor
        self.backend = backend

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.backend == "postgresql" else statement

    def execute(self, statement: str, params: Sequence[Any] = ()) -> "Transaction":
        self._cursor.execute(self._sql(statement), tuple(params))
        return self

    def executemany(self, statement: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = [tuple(row) for row in rows]
        if rows:
            self._cursor.executemany(self._sql(statement), rows)

    def fetchall(self, statement: str, params: Sequence[Any] = ()) -> list[tuple]:
        self.execute(statement, params)
        return list(self._cursor.fetchall())

    def fetchone(self, statement: str, params: Sequence[Any] = ()) -> tuple | None:
        self.execute(statement, params)
        return self._cursor.fetchone()

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def in_list(self, values: Sequence[Any]) -> str:
        """``(?, ?, ?)`` for ``WHERE x IN`` with that many values."""
        return "(" + ",".join("?" * len(values)) + ")"


class ViewStore:
    """Connections to the read-model tables of one database (SQLite file or PostgreSQL)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.backend = database.backend
        self._local = threading.local()
        self._pool = None
        if self.backend == "postgresql":
            from psycopg_pool import ConnectionPool

            env = database.library_env
            conninfo = {
                "dbname": env["POSTGRES_DBNAME"],
                "host": env["POSTGRES_HOST"],
                "port": env["POSTGRES_PORT"],
                "user": env["POSTGRES_USER"],
                "connect_timeout": env.get("POSTGRES_CONNECT_TIMEOUT", "5"),
            }
            if env.get("POSTGRES_PASSWORD"):
                conninfo["password"] = env["POSTGRES_PASSWORD"]
            if env.get("POSTGRES_SCHEMA"):
                conninfo["options"] = f"-c search_path={env['POSTGRES_SCHEMA']}"
            self._pool = ConnectionPool(kwargs=conninfo, min_size=1, max_size=16, open=True, name="views")

    # --- connections -------------------------------------------------------------------------

    def _sqlite_connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            name = self.database.library_env["SQLITE_DBNAME"]
            connection = sqlite3.connect(name, isolation_level=None, check_same_thread=False, uri=name.startswith("file:"))
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA busy_timeout=30000")
            connection.execute("PRAGMA synchronous=NORMAL")
            self._local.connection = connection
        return connection

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Transaction]:
        """A transaction: committed when the block ends, rolled back on an exception.

        On SQLite a writing transaction starts with ``BEGIN IMMEDIATE`` so that writers queue for
        the lock instead of failing half-way."""
        if self._pool is None:
            connection = self._sqlite_connection()
            cursor = connection.cursor()
            cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield Transaction(cursor, self.backend)
            except BaseException:
                connection.rollback()
                raise
            else:
                connection.commit()
            finally:
                cursor.close()
            return
        with self._pool.connection() as connection:
            with connection.transaction():
                with connection.cursor() as cursor:
                    yield Transaction(cursor, self.backend)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

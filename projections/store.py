"""Where read models live: the same database as the event log, reached through our own connections.

SQL in this package is written once with ``?`` placeholders and ``ON CONFLICT`` upserts, which both
SQLite (3.24+) and PostgreSQL understand; the PostgreSQL connection turns ``?`` into ``%s``.
JSON is stored as text, written with sorted keys, so that two rebuilds give identical rows.

PostgreSQL text cannot hold NUL (U+0000); SQLite's can. The log keeps what it was given (the API
refuses NUL today, but an old log may hold it, e.g. in a justification or in an email rendered
from one), so on PostgreSQL every ``str`` parameter written or compared has each NUL replaced by
``NUL_ESCAPE``, U+FFFD (the Unicode replacement character): the read models show it instead of
stopping on the event. Inside JSON text a NUL is already written as the six characters ``\\u0000``.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import orjson



@dataclass(frozen=True)
class Database:
    """Where events and read models live (made from ``ENTITLEMENTS_DATABASE_URL`` by
    ``entitlements.persistence``)."""

    backend: str  # "sqlite" or "postgresql"
    library_env: dict[str, str]
    path: Path | None = None  # the SQLite file, when there is one

    @property
    def is_sqlite(self) -> bool:
        return self.backend == "sqlite"


def dumps(value: Any) -> str:
    """Canonical JSON: the same value always gives the same text."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")


loads = orjson.loads

SQLITE_CACHE_KIB = 32 * 1024

NUL_ESCAPE = "\ufffd"  # what a NUL of the log becomes in PostgreSQL's read-model tables


def without_nul(value: Any) -> Any:
    """``value`` with each NUL of its text replaced by :data:`NUL_ESCAPE` (in lists too)."""
    if isinstance(value, str):
        return value.replace("\x00", NUL_ESCAPE) if "\x00" in value else value
    if isinstance(value, (list, tuple)):
        try:  # a list of text (or None): one search through all of it, the usual answer being none
            if "\x00" not in "".join(filter(None, value)):
                return list(value)
        except TypeError:  # numbers, or lists in the list
            if not any(isinstance(item, (str, list, tuple)) for item in value):
                return list(value)
        return [without_nul(item) for item in value]
    return value


def sql_text(value: str) -> str:
    """``value`` as an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


class Transaction:
    """One open transaction on a view connection."""

    def __init__(self, cursor: Any, backend: str) -> None:
        self._cursor = cursor
        self.backend = backend

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.backend == "postgresql" else statement

    def execute(self, statement: str, params: Sequence[Any] = ()) -> "Transaction":
        if self.backend == "postgresql":
            params = [without_nul(param) for param in params]
        self._cursor.execute(self._sql(statement), tuple(params))
        return self

    def insert_many(
        self, statement: str, rows: Iterable[Sequence[Any]], *, types: Sequence[str], conflict: str = ""
    ) -> None:
        """``INSERT INTO t (a, b)`` the ``rows`` (+ ``ON CONFLICT ...``); ``types`` are the columns'
        SQL types. On PostgreSQL all rows go in one statement as one array per column
        (``SELECT * FROM unnest(...)``): one round trip and one short, prepared statement, several
        times faster than ``executemany``. Rows must not repeat a key within one call."""
        rows = [tuple(row) for row in rows]
        if not rows:
            return
        if self.backend != "postgresql":
            placeholders = "(" + ",".join("?" * len(types)) + ")"
            self.execute_many(f"{statement} VALUES {placeholders} {conflict}", rows)
            return
        arrays = ", ".join(f"%b::{sql_type}[]" for sql_type in types)  # %b: binary, no text escaping
        columns = [
            without_nul(list(column)) if sql_type == "text" else list(column) for column, sql_type in zip(zip(*rows), types)
        ]
        self._cursor.execute(f"{statement} SELECT * FROM unnest({arrays}) {conflict}", columns)

    def copy_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> bool:
        """PostgreSQL: ``rows`` (none of which ``table`` should hold) into ``table`` with one
        ``COPY``, in a savepoint. True when they are in; False, with none of them written, when
        one breaks a unique index (another transaction wrote it first) or a value is refused (a
        NUL in text): the caller then inserts them another way."""
        assert self.backend == "postgresql", "SQLite: execute_many"
        import psycopg

        try:
            with self._cursor.connection.transaction():
                with self._cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        except (psycopg.errors.UniqueViolation, psycopg.errors.DataError):
            return False
        return True

    def execute_many(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        """SQLite: ``statement`` once per row of parameters (PostgreSQL: see insert_many)."""
        assert self.backend != "postgresql", "PostgreSQL: insert_many, one statement for all rows"
        self._cursor.executemany(statement, rows)

    def fetchall(self, statement: str, params: Sequence[Any] = ()) -> list[tuple]:
        self.execute(statement, params)
        return list(self._cursor.fetchall())

    def table_exists(self, table: str) -> bool:
        """Whether ``table`` exists (a temporary one included)."""
        if self.backend == "postgresql":
            return self.fetchone("SELECT to_regclass(?) IS NOT NULL", (table,))[0]
        return self.fetchone("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
                             " UNION ALL SELECT 1 FROM sqlite_temp_master WHERE type = 'table' AND name = ?", (table, table)) is not None

    def columns(self, table: str) -> list[str]:
        """The column names of ``table``, in order."""
        self.execute(f"SELECT * FROM {table} LIMIT 0")
        description = self._cursor.description
        self._cursor.fetchall()
        return [column[0] for column in description]

    def fetchone(self, statement: str, params: Sequence[Any] = ()) -> tuple | None:
        self.execute(statement, params)
        return self._cursor.fetchone()

    def fetch_where_in(self, select: str, column: str, values: Iterable[Any]) -> list[tuple]:
        """``select`` + ``WHERE column IN values``, for any number of values (one array
        parameter on PostgreSQL; chunks of 500 on SQLite)."""
        values = sorted(set(values))
        if not values:
            return []
        if self.backend == "postgresql":
            return self.fetchall(f"{select} WHERE {column} = ANY(?)", (values,))
        rows: list[tuple] = []
        for start in range(0, len(values), 500):
            chunk = values[start : start + 500]
            rows += self.fetchall(f"{select} WHERE {column} IN {self.in_list(chunk)}", chunk)
        return rows

    def delete_where_in(self, table: str, column: str, values: Iterable[Any]) -> None:
        values = sorted(set(values))
        if not values:
            return
        if self.backend == "postgresql":
            self.execute(f"DELETE FROM {table} WHERE {column} = ANY(?)", (values,))
            return
        for start in range(0, len(values), 500):
            chunk = values[start : start + 500]
            self.execute(f"DELETE FROM {table} WHERE {column} IN {self.in_list(chunk)}", chunk)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: an exception inside the block undoes only what the block did, and
        the transaction goes on (how one read model's failure leaves the others' work in place)."""
        if self.backend == "postgresql":
            with self._cursor.connection.transaction():
                yield
            return
        self._cursor.execute("SAVEPOINT read_model")
        try:
            yield
        except BaseException:
            self._cursor.execute("ROLLBACK TO SAVEPOINT read_model")
            self._cursor.execute("RELEASE SAVEPOINT read_model")
            raise
        self._cursor.execute("RELEASE SAVEPOINT read_model")

    def in_list(self, values: Sequence[Any]) -> str:
        """``(?, ?, ?)`` for ``WHERE x IN`` with that many values."""
        return "(" + ",".join("?" * len(values)) + ")"


class ViewStore:
    """Connections to the read-model tables of one database (SQLite file or PostgreSQL)."""

    def __init__(self, database: Database, *, connections: int = 16) -> None:
        """``connections``: at most that many PostgreSQL connections; 1 makes every transaction
        use the same session (what temporary tables need: a rebuild builds its rows beside)."""
        self.database = database
        self.backend = database.backend
        self._local = threading.local()
        self._sqlite_connections: list[sqlite3.Connection] = []
        self._sqlite_lock = threading.Lock()
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
            # autocommit: a read is one round trip (no BEGIN/COMMIT); writes open a transaction block
            self._pool = ConnectionPool(
                kwargs={**conninfo, "autocommit": True}, min_size=1, max_size=connections, open=True, name="views"
            )

    # --- connections -------------------------------------------------------------------------

    def _sqlite_connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            name = self.database.library_env["SQLITE_DBNAME"]
            connection = sqlite3.connect(
                name, isolation_level=None, check_same_thread=False, uri=name.startswith("file:")
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA busy_timeout=30000")
            connection.execute("PRAGMA synchronous=NORMAL")
            # pages kept in memory, up to 32 MB per connection (SQLite's default is 2 MB): a read
            # model's indexes keyed at random (ids) are written all over as the history grows
            connection.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
            connection.execute(f"PRAGMA temp.cache_size=-{SQLITE_CACHE_KIB}")  # a rebuild's tables
            self._local.connection = connection
            with self._sqlite_lock:
                self._sqlite_connections.append(connection)
        return connection

    @contextmanager
    def transaction(self, *, write: bool = True, binary: bool = False) -> Iterator[Transaction]:
        """A transaction: committed when the block ends, rolled back on an exception.

        On SQLite a writing transaction starts with ``BEGIN IMMEDIATE`` so that writers queue for
        the lock instead of failing half-way. With ``write=False`` there is no transaction block:
        each statement reads committed data on its own (one round trip on PostgreSQL). ``binary`` asks PostgreSQL for binary results (bytea
        arrives as bytes, not hex text)."""
        if self._pool is None:
            connection = self._sqlite_connection()
            cursor = connection.cursor()
            if not write:  # each statement sees committed data, as on PostgreSQL
                try:
                    yield Transaction(cursor, self.backend)
                finally:
                    cursor.close()
                return
            cursor.execute("BEGIN IMMEDIATE")
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
            if not write:  # each statement sees committed data; no transaction block to open and close
                with connection.cursor(binary=binary) as cursor:
                    yield Transaction(cursor, self.backend)
                return
            with connection.transaction():
                with connection.cursor(binary=binary) as cursor:
                    yield Transaction(cursor, self.backend)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        with self._sqlite_lock:  # every thread's connection (web workers open their own)
            connections, self._sqlite_connections = self._sqlite_connections, []
        for connection in connections:
            connection.close()
        self._local = threading.local()

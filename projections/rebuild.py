"""Rebuilding read models beside the rows that serve, then swapping the result in one transaction.

A rebuild opens one connection of its own and creates, in it, temporary copies of the tables of
the read models it rebuilds (SQLite's ``temp`` schema, PostgreSQL's ``pg_temp``), with temporary
``projection_positions`` and ``projection_failures`` tables of their own. Temporary tables are
found before the real ones by unqualified names, so the read models' own SQL, unchanged, projects
the whole log into the copies while every other connection keeps reading (and the projector that
serves keeps updating) the real rows. When the copies reach the target position, one transaction
replaces the real rows with them and sets their positions.

A rebuild that fails, or whose process is killed at any instant, leaves the real rows, positions,
directory and tokens as they were: the temporary tables vanish with the connection. Tables a read
model keeps across rebuilds (:attr:`ReadModel.kept_tables`, the notifier's outbox) are not copied:
the rebuild adds to them directly, as the projector would, and they never lose a row.

Read models named alone that derive from others (``pending`` from ``facts``) read their sources as
they are: the sources are brought up to the head first, and the rebuild's target is their position.
"""

from __future__ import annotations

import re
from typing import Callable, Sequence

from eventsourcing.application import Application

from projections.engine import FAILURES_TABLE, Failure, Projector, ReadModel, read_positions
from projections.event_log import EventLog
from projections.store import Database, Transaction, ViewStore

_CREATE_TABLE = re.compile(r"^\s*CREATE TABLE IF NOT EXISTS (\w+)", re.IGNORECASE)
_CREATE_INDEX = re.compile(r"^\s*CREATE (UNIQUE )?INDEX IF NOT EXISTS (\w+) ON (\w+)", re.IGNORECASE)


class RebuildFailed(Exception):
    """A rebuild that could not finish; the read models keep the rows they had."""

    def __init__(self, message: str, failure: Failure | None = None) -> None:
        super().__init__(message)
        self.failure = failure


def rebuild_beside(
    app: Application,
    database: Database,
    group: Sequence[ReadModel],
    *,
    rebuilt: Sequence[str],
    batch_size: int,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Rebuilds the read models ``rebuilt`` of ``group`` (the others of the group are sources,
    read as they are); answers the log positions passed."""
    store = ViewStore(database, connections=1)  # one session: its temporary tables
    try:
        return _rebuild(app, store, list(group), set(rebuilt), batch_size, progress)
    finally:
        store.close()


def _rebuild(
    app: Application,
    store: ViewStore,
    group: list[ReadModel],
    rebuilt: set[str],
    batch_size: int,
    progress: Callable[[int, int], None] | None,
) -> int:
    models = [model for model in group if model.name in rebuilt]
    head = EventLog(app, store).head()
    with store.transaction() as tx:
        sources = read_positions(tx, [model.name for model in group if model.name not in rebuilt])
        target = min([head, *sources.values()])
        tx.execute("CREATE TEMP TABLE projection_positions (name TEXT PRIMARY KEY, position BIGINT NOT NULL)")
        tx.execute(FAILURES_TABLE.replace("CREATE TABLE IF NOT EXISTS", "CREATE TEMP TABLE", 1))
        for model in models:
            for statement in model.tables:
                temporary = temporary_statement(statement, model.rebuilt_tables(), tx.backend)
                if temporary:
                    tx.execute(temporary)
        for model in group:
            tx.execute(
                "INSERT INTO projection_positions (name, position) VALUES (?, ?)",
                (model.name, 0 if model.name in rebuilt else target),
            )
    projector = Projector(app, store, group, batch_size=batch_size, until=target, prepare=False)
    moved = projector.catch_up(progress)
    failures = projector.failures()
    if failures:
        failure = next(iter(failures.values()))
        raise RebuildFailed(
            f"{failure.describe()}; nothing was changed: the read models keep the rows they had", failure
        )
    positions = projector.positions()
    behind = {name: positions[name] for name in rebuilt if positions[name] < target}
    if behind:
        raise RebuildFailed(
            f"the rebuild stopped before position {target} ({behind}); nothing was changed: the read models keep the rows they had"
        )
    _swap(store, models, target)
    return moved


def _swap(store: ViewStore, models: list[ReadModel], target: int) -> None:
    """In one transaction: the real tables of ``models`` get the rebuilt rows, and their positions
    ``target``."""
    names = [model.name for model in models]
    with store.transaction() as tx:
        real, temporary = _schemas(tx)
        lock = " ORDER BY name FOR UPDATE" if tx.backend == "postgresql" else ""
        tx.execute(f"SELECT name FROM {real}.projection_positions WHERE name IN {tx.in_list(names)}{lock}", names)
        for model in models:
            for table in model.rebuilt_tables():
                columns = ", ".join(tx.columns(f"{temporary}.{table}"))
                tx.execute(f"DELETE FROM {real}.{table}")
                tx.execute(f"INSERT INTO {real}.{table} ({columns}) SELECT {columns} FROM {temporary}.{table}")
        tx.execute(
            f"UPDATE {real}.projection_positions SET position = ? WHERE name IN {tx.in_list(names)}", (target, *names)
        )
        tx.execute(f"DELETE FROM {real}.projection_failures WHERE name IN {tx.in_list(names)}", names)


def _schemas(tx: Transaction) -> tuple[str, str]:
    """(the schema of the real tables, the temporary schema), quoted for SQL."""
    if tx.backend == "postgresql":
        row = tx.fetchone("SELECT current_schema()")
        return '"' + str(row[0]).replace('"', '""') + '"', "pg_temp"
    return "main", "temp"


def temporary_statement(statement: str, tables: Sequence[str], backend: str) -> str | None:
    """The temporary twin of a read model's ``CREATE TABLE`` or ``CREATE INDEX`` statement for one
    of ``tables``; None for a statement about another table."""
    table = _CREATE_TABLE.match(statement)
    if table:
        if table.group(1) not in tables:
            return None
        return _CREATE_TABLE.sub(lambda m: f"CREATE TEMP TABLE {m.group(1)}", statement, count=1)
    index = _CREATE_INDEX.match(statement)
    if index:
        unique, name, on = index.groups()
        if on not in tables:
            return None
        qualified = f"temp.{name}" if backend == "sqlite" else name  # PostgreSQL: beside its temporary table
        return _CREATE_INDEX.sub(f"CREATE {unique or ''}INDEX {qualified} ON {on}", statement, count=1)
    return None

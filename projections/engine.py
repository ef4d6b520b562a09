"""The projection loop: reads the event log in pages and feeds read models in batches.

Each read model writes its rows and its own tracking position (a row of ``projection_positions``)
in one transaction, so a crash loses nothing and repeats nothing. One pass over the log feeds every
read model of a group; a read model already past an event skips it. A page is read with the topics
the group needs filtered in SQL, bounded by the log head taken before the read, and the position
recorded is that head when the page is not full, so the position never stalls below the head.

Events come from :mod:`projections.event_log`: only the columns needed, decoded from the
library's JSON without building its event objects.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import astuple, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Iterator, Sequence

from eventsourcing.application import Application

from projections.event_log import EventLog, LogEvent
from projections.store import Transaction, ViewStore

log = logging.getLogger(__name__)

# Events per transaction when catching up. Larger pages rewrite a request's facts less often
# (its events spread over several pages); 5,000 keeps a page's memory to a few megabytes.
BATCH_SIZE = 5000

POSITIONS_TABLE = """CREATE TABLE IF NOT EXISTS projection_positions (
    name TEXT PRIMARY KEY,
    position BIGINT NOT NULL
)"""

# A read model that fails on an event: it stays just before that event (``position``) while the
# others go on, and is tried again with backoff. Written in the batch's transaction; deleted when
# the read model gets past the event. ``/readyz`` and reads with ``X-Min-Position`` report it.
FAILURES_TABLE = """CREATE TABLE IF NOT EXISTS projection_failures (
    name TEXT PRIMARY KEY,
    position BIGINT NOT NULL,
    event_position BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    error TEXT NOT NULL,
    failing_since TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    retry_at TEXT NOT NULL
)"""

FIRST_RETRY_SECONDS = 1.0
LONGEST_RETRY_SECONDS = 60.0


@dataclass(frozen=True)
class Failure:
    """A read model stuck on an event of the log."""

    name: str
    position: int  # processed up to here
    event_position: int  # the event it fails on
    event_type: str
    error: str  # "OverflowError: date value out of range"
    failing_since: str
    attempts: int
    retry_at: str

    def describe(self) -> str:
        return (
            f"read model {self.name} fails on event {self.event_position} ({self.event_type}): {self.error}"
        )


def read_failures(tx: Transaction, names: Iterable[str] | None = None) -> dict[str, Failure]:
    statement = f"SELECT {', '.join(Failure.__dataclass_fields__)} FROM projection_failures"
    rows = tx.fetchall(statement)
    failures = {row[0]: Failure(*row) for row in rows}
    if names is not None:
        wanted = set(names)
        failures = {name: failure for name, failure in failures.items() if name in wanted}
    return failures


class ReadModel:
    """A read model: its tables, the topics it reads, and how a batch of events changes its rows."""

    name: str = ""
    topics: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()  # CREATE TABLE / INDEX statements (IF NOT EXISTS)
    sources: tuple["ReadModel", ...] = ()  # read models this one reads, projected before it
    kept_tables: tuple[str, ...] = ()  # tables a rebuild keeps and adds to (the outbox), never clears

    def create(self, tx: Transaction) -> None:
        for statement in self.tables:
            tx.execute(statement)

    def table_names(self) -> list[str]:
        names = []
        for statement in self.tables:
            words = statement.split()
            if words[:2] == ["CREATE", "TABLE"]:
                names.append(words[5] if words[2:5] == ["IF", "NOT", "EXISTS"] else words[2])
        return names

    def rebuilt_tables(self) -> list[str]:
        """The tables a rebuild builds anew: all but :attr:`kept_tables`."""
        return [table for table in self.table_names() if table not in self.kept_tables]

    def clear(self, tx: Transaction) -> None:
        for table in self.rebuilt_tables():
            tx.execute(f"DELETE FROM {table}")

    def apply(self, tx: Transaction, events: Sequence[LogEvent], *, after: int) -> None:
        """Changes the rows for ``events`` (which follow position ``after``), in ``tx``."""
        raise NotImplementedError

    def finished(self, position: int | None) -> None:
        """The transaction of the last :meth:`apply` committed up to ``position``, or (None) was
        rolled back: what the read model keeps in memory must then be forgotten."""

    def dump(self, tx: Transaction) -> list[tuple]:
        """Every row of every table, in a stable order (to compare two rebuilds)."""
        rows: list[tuple] = []
        for table in self.table_names():
            for row in tx.fetchall(f"SELECT * FROM {table}"):
                rows.append((table, *row))
        return sorted(rows, key=repr)


ProgressCallback = Callable[[int, int], None]  # (events passed in this batch, position reached)


class Projector:
    """Runs a group of read models over the log of ``app``.

    Each read model of a batch is applied in a savepoint of the batch's transaction: one that
    fails is rolled back alone, stays just before the event it fails on (found by applying the
    batch's events one at a time), is recorded in ``projection_failures`` and tried again with
    backoff (1 s, doubling to a minute), while the others go on; read models reading it wait at
    its position. ``until``: never project past this position (a rebuild's fixed target).
    """

    def __init__(
        self,
        app: Application,
        store: ViewStore,
        models: Sequence[ReadModel],
        *,
        batch_size: int = BATCH_SIZE,
        until: int | None = None,
        prepare: bool = True,
    ) -> None:
        self.app = app
        self.store = store
        self.models = with_sources(models)
        self.batch_size = batch_size
        self.until = until
        self.log = EventLog(app, store)
        self.topics = sorted({topic for model in self.models for topic in model.topics})
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._backoff: dict[str, tuple[float, float]] = {}  # name -> (retry at, monotonic; delay)
        self._reported: set[tuple[str, int, str]] = set()  # failures already logged
        if prepare:
            with store.transaction() as tx:
                prepare_positions(tx, [model.name for model in self.models])
                for model in self.models:
                    model.create(tx)

    # --- positions ---------------------------------------------------------------------------

    def positions(self) -> dict[str, int]:
        with self.store.transaction(write=False) as tx:
            return read_positions(tx, [model.name for model in self.models])

    def failures(self) -> dict[str, Failure]:
        """The read models of this group that are stuck on an event, by name."""
        with self.store.transaction(write=False) as tx:
            return read_failures(tx, [model.name for model in self.models])

    def head(self) -> int:
        head = self.log.head()
        return head if self.until is None else min(head, self.until)

    # --- one batch ---------------------------------------------------------------------------

    def run_once(self) -> int:
        """Processes one page of the log for every read model behind the head; returns how many
        log positions it moved the slowest read model it ran by (0: all caught up, or waiting)."""
        with self._lock:
            return self._run_once()

    def _waiting(self, positions: dict[str, int]) -> set[str]:
        """Read models not to run now: those failing until their retry time, and those held by a
        source that waits at or behind their own position."""
        now = time.monotonic()
        waiting = {name for name, (retry_at, _) in self._backoff.items() if retry_at > now}
        for model in self.models:  # sources come before their readers
            if any(s.name in waiting and positions[s.name] <= positions[model.name] for s in model.sources):
                waiting.add(model.name)
        return waiting

    def _run_once(self) -> int:
        names = [model.name for model in self.models]
        positions = self.positions()
        waiting = self._waiting(positions)
        active = [model for model in self.models if model.name not in waiting]
        if not active:
            return 0
        start = min(positions[model.name] for model in active)
        head = self.head()
        if start >= head:
            return 0
        # the topics of the read models that have events to apply, not of those at the head (a read
        # model rebuilt alone reads its own events, not those of the sources it reads)
        topics = sorted({topic for model in active if positions[model.name] < head for topic in model.topics})
        events = self.log.read(start, stop=head, limit=self.batch_size, topics=topics)
        end = events[-1].position if len(events) == self.batch_size else head
        reached = dict(positions)
        applied: list[ReadModel] = []
        failed: dict[str, tuple[ReadModel, LogEvent, BaseException]] = {}
        try:
            with self.store.transaction() as tx:
                if tx.backend == "postgresql":
                    # Safe for read models: a crash can lose only whole recent batches, rows and
                    # position together, and they are projected again from the log.
                    tx.execute("SET LOCAL synchronous_commit = off")
                current = read_positions(tx, names, lock=True)
                if current != positions:  # another process moved first: it did this work
                    return max(0, min(current[model.name] for model in active) - start)
                for model in active:
                    mine = positions[model.name]
                    stop = min([end] + [reached[source.name] for source in model.sources])
                    if mine >= stop:
                        continue
                    wanted = set(model.topics)
                    batch = [e for e in events if mine < e.position <= stop and e.topic in wanted]
                    applied.append(model)
                    reached[model.name], failure = self._apply(tx, model, batch, after=mine, stop=stop)
                    if failure is not None:
                        failed[model.name] = (model, *failure)
                    if reached[model.name] > mine:
                        tx.execute(
                            "UPDATE projection_positions SET position = ? WHERE name = ?", (reached[model.name], model.name)
                        )
                moved = [model.name for model in applied if model.name not in failed and reached[model.name] > positions[model.name]]
                if moved:
                    tx.execute(f"DELETE FROM projection_failures WHERE name IN {tx.in_list(moved)}", moved)
                for name, (model, event, error) in failed.items():
                    self._record_failure(tx, name, reached[name], event, error)
        except BaseException:
            for model in applied:
                model.finished(None)
            raise
        for model in applied:
            model.finished(None if model.name in failed else reached[model.name])
            if model.name not in failed and reached[model.name] > positions[model.name]:
                self._backoff.pop(model.name, None)
        return min(reached[model.name] for model in active) - start

    def _apply(
        self, tx: Transaction, model: ReadModel, events: list[LogEvent], *, after: int, stop: int
    ) -> tuple[int, tuple[LogEvent, BaseException] | None]:
        """Applies ``events`` to ``model`` in a savepoint; answers the position it reached and,
        when it failed, the event it fails on and the error. After a failure the events are
        applied one at a time, so the read model keeps what precedes the failing event."""
        try:
            with tx.savepoint():
                model.apply(tx, events, after=after)
            return stop, None
        except Exception:
            model.finished(None)
        position = after
        for event in events:
            try:
                with tx.savepoint():
                    model.apply(tx, [event], after=position)
            except Exception as error:
                model.finished(None)
                return event.position - 1, (event, error)  # every event of its topics before it is applied
            position = event.position
        return stop, None  # the events pass one by one: what failed was their batch as a whole

    def _record_failure(self, tx: Transaction, name: str, position: int, event: LogEvent, error: BaseException) -> None:
        _, delay = self._backoff.get(name, (0.0, FIRST_RETRY_SECONDS / 2))
        delay = min(LONGEST_RETRY_SECONDS, delay * 2)
        self._backoff[name] = (time.monotonic() + delay, delay)
        now = datetime.now(timezone.utc)
        text = f"{type(error).__name__}: {error}"[:2000]
        previous = read_failures(tx, [name]).get(name)
        same = previous is not None and previous.event_position == event.position
        failure = Failure(
            name=name,
            position=position,
            event_position=event.position,
            event_type=event.kind,
            error=text,
            failing_since=previous.failing_since if same else now.isoformat(),
            attempts=previous.attempts + 1 if same else 1,
            retry_at=(now + timedelta(seconds=delay)).isoformat(),
        )
        tx.execute("DELETE FROM projection_failures WHERE name = ?", (name,))
        tx.execute(
            f"INSERT INTO projection_failures ({', '.join(Failure.__dataclass_fields__)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            astuple(failure),
        )
        key = (name, event.position, text)
        if key in self._reported:
            log.debug("%s (attempt %d; retrying in %g s)", failure.describe(), failure.attempts, delay)
            return
        self._reported.add(key)
        log.error(
            "%s; it stays at position %d and is retried in %g s; the other read models go on",
            failure.describe(), position, delay,
        )
        log.debug("the failure of read model %s", name, exc_info=error)

    def catch_up(self, progress: ProgressCallback | None = None) -> int:
        """Runs batches until every read model reaches the head taken at the start (or waits on
        a failure: see :meth:`failures`)."""
        with fewer_collections():
            return self._catch_up(progress)

    def _catch_up(self, progress: ProgressCallback | None) -> int:
        target = self.head()
        moved = 0
        while True:
            passed = self.run_once()
            moved += passed
            if passed == 0:
                return moved
            reached = min(self.positions().values())
            if progress:
                progress(passed, reached)
            if reached >= target:
                return moved

    def wait_for(self, position: int, timeout: float, names: Sequence[str] | None = None) -> bool:
        """Waits until every read model of the group (or those ``names``) has processed ``position``."""
        deadline = time.monotonic() + timeout
        while True:
            positions = self.positions()
            if min(positions[name] for name in (names or positions)) >= position:
                return True
            if time.monotonic() >= deadline:
                return False
            self._wake.set()
            time.sleep(0.05)

    # --- following ---------------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def follow(self, stop: threading.Event, *, interval: float = 0.2) -> None:
        """Follows the log until ``stop`` is set: processes new events as they come (polling the
        head every ``interval`` seconds, or at once after :meth:`wake`). A batch that fails as a
        whole (the database does not answer) is logged once per distinct error and retried."""
        last_error = None
        while not stop.is_set():
            try:
                if self.run_once():
                    continue
                last_error = None
            except Exception as error:  # keep following; the next round retries the same batch
                text = f"{type(error).__name__}: {error}"
                if text != last_error:
                    log.error("projection batch failed (%s); retrying every second", text)
                    log.debug("the failed projection batch", exc_info=error)
                last_error = text
                stop.wait(1.0)
            self._wake.wait(interval)
            self._wake.clear()

    def retry_failed(self) -> None:
        """The failing read models run again at the next batch, whatever their backoff."""
        self._backoff.clear()

    # --- rebuilding --------------------------------------------------------------------------

    def reset(self, models: Sequence[ReadModel] | None = None) -> None:
        """Drops every row of ``models`` (the whole group when None) and their positions, in one
        transaction. (``ReadModels.rebuild`` builds beside and swaps instead.)"""
        with self.store.transaction() as tx:
            read_positions(tx, [model.name for model in self.models], lock=True)
            for model in self.models if models is None else models:
                model.clear(tx)
                tx.execute("UPDATE projection_positions SET position = 0 WHERE name = ?", (model.name,))
                tx.execute("DELETE FROM projection_failures WHERE name = ?", (model.name,))
                self._backoff.pop(model.name, None)


def prepare_positions(tx: Transaction, names: Iterable[str], *, start: int = 0) -> None:
    """The positions and failures tables, and a position row for each of ``names``."""
    tx.execute(POSITIONS_TABLE)
    tx.execute(FAILURES_TABLE)
    for name in names:
        tx.execute(
            "INSERT INTO projection_positions (name, position) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
            (name, start),
        )


def with_sources(models: Sequence[ReadModel]) -> list[ReadModel]:
    """``models`` with the read models they read added, each placed before its readers."""
    ordered: list[ReadModel] = []
    for model in models:
        for source in model.sources:
            if source not in ordered:
                ordered.append(source)
        if model not in ordered:
            ordered.append(model)
    return ordered


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Catching up builds and drops many small dicts and keeps some (the facts cache): Python's
    cyclic garbage collector would scan them again and again (a fifth of a rebuild's time,
    measured). Our objects hold no cycles, so collect far less often while catching up. The
    threshold is the process's: the first of concurrent catch-ups raises it, the last restores it."""
    with _collections_lock:
        if not _catching_up:
            _saved_threshold[:] = gc.get_threshold()
            gc.set_threshold(100_000, 50, 100)
        _catching_up.append(None)
    try:
        yield
    finally:
        with _collections_lock:
            _catching_up.pop()
            if not _catching_up:
                gc.set_threshold(*_saved_threshold)


_collections_lock = threading.Lock()
_catching_up: list[None] = []
_saved_threshold: list[int] = []


def with_read_position(name: str, select: str, params: Sequence[Any], order: str) -> tuple[str, list[Any]]:
    """A page's ``select`` made to answer also where read model ``name`` had got to: each row
    starts with that position, and an empty page is one row of NULLs after it. One statement is
    one snapshot, so the position is exactly that of the rows read, and the read costs one round
    trip instead of two (``/audit/access`` under load). ``order`` orders the outer rows (the
    columns of ``select``, unqualified). Read it back with :func:`split_read_position`."""
    statement = (
        "SELECT (SELECT position FROM projection_positions WHERE name = ?) AS read_position, page.*"
        f" FROM (SELECT 1 AS one) AS one LEFT JOIN ({select}) AS page ON 1 = 1 ORDER BY {order}"
    )
    return statement, [name, *params]


def split_read_position(rows: Sequence[tuple], key: int) -> tuple[int, list[tuple]]:
    """(the position, the page's rows) of a :func:`with_read_position` statement's rows; ``key``
    is the index, in ``select``'s columns, of one that is never NULL in a row of the page."""
    position = int(rows[0][0] or 0) if rows else 0
    return position, [row[1:] for row in rows if row[key + 1] is not None]


def read_positions(tx: Transaction, names: Iterable[str], *, lock: bool = False) -> dict[str, int]:
    names = list(names)
    if not names:
        return {}
    statement = f"SELECT name, position FROM projection_positions WHERE name IN {tx.in_list(names)}"
    if lock and tx.backend == "postgresql":
        statement += " ORDER BY name FOR UPDATE"
    found = dict(tx.fetchall(statement, names))
    return {name: int(found.get(name, 0)) for name in names}


def topics(module: str, *kinds: str) -> tuple[str, ...]:
    """``topics("access_request", "AccessRequest.Submitted")`` -> the library's topic strings."""
    return tuple(f"domain.{module}:{kind}" for kind in kinds)

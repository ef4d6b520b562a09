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
from typing import Callable, Iterable, Iterator, Sequence

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


class ReadModel:
    """A read model: its tables, the topics it reads, and how a batch of events changes its rows."""

    name: str = ""
    topics: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()  # CREATE TABLE / INDEX statements (IF NOT EXISTS)
    sources: tuple["ReadModel", ...] = ()  # read models this one reads, projected before it

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

    def clear(self, tx: Transaction) -> None:
        for table in self.table_names():
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
    """Runs a group of read models over the log of ``app``."""

    def __init__(
        self, app: Application, store: ViewStore, models: Sequence[ReadModel], *, batch_size: int = BATCH_SIZE
    ) -> None:
        self.app = app
        self.store = store
        self.models = with_sources(models)
        self.batch_size = batch_size
        self.log = EventLog(app, store)
        self.topics = sorted({topic for model in self.models for topic in model.topics})
        self._lock = threading.Lock()
        self._wake = threading.Event()
        with store.transaction() as tx:
            tx.execute(POSITIONS_TABLE)
            for model in self.models:
                model.create(tx)
                tx.execute(
                    "INSERT INTO projection_positions (name, position) VALUES (?, 0) ON CONFLICT (name) DO NOTHING",
                    (model.name,),
                )

    # --- positions ---------------------------------------------------------------------------

    def positions(self) -> dict[str, int]:
        with self.store.transaction(write=False) as tx:
            return read_positions(tx, [model.name for model in self.models])

    def head(self) -> int:
        return self.log.head()

    # --- one batch ---------------------------------------------------------------------------

    def run_once(self) -> int:
        """Processes one page of the log for every read model behind the head; returns how many
        log positions it moved the slowest read model by (0: all caught up)."""
        with self._lock:
            return self._run_once()

    def _run_once(self) -> int:
        names = [model.name for model in self.models]
        positions = self.positions()
        start = min(positions[name] for name in names)
        head = self.head()
        if start >= head:
            return 0
        events = self.log.read(start, stop=head, limit=self.batch_size, topics=self.topics)
        end = events[-1].position if len(events) == self.batch_size else head
        applied: list[ReadModel] = []
        try:
            with self.store.transaction() as tx:
                if tx.backend == "postgresql":
                    # Safe for read models: a crash can lose only whole recent batches, rows and
                    # position together, and they are projected again from the log.
                    tx.execute("SET LOCAL synchronous_commit = off")
                current = read_positions(tx, names, lock=True)
                if current != positions:  # another process moved first: it did this work
                    return max(0, min(current.values()) - start)
                for model in self.models:
                    mine = positions[model.name]
                    if mine >= end:
                        continue
                    wanted = set(model.topics)
                    applied.append(model)
                    model.apply(tx, [e for e in events if e.position > mine and e.topic in wanted], after=mine)
                    tx.execute("UPDATE projection_positions SET position = ? WHERE name = ?", (end, model.name))
        except BaseException:
            for model in applied:
                model.finished(None)
            raise
        for model in applied:
            model.finished(end)
        return end - start

    def catch_up(self, progress: ProgressCallback | None = None) -> int:
        """Runs batches until every read model reaches the head taken at the start."""
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

    def wait_for(self, position: int, timeout: float) -> bool:
        """Waits until every read model of the group has processed ``position``."""
        deadline = time.monotonic() + timeout
        while True:
            if min(self.positions().values()) >= position:
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
        head every ``interval`` seconds, or at once after :meth:`wake`)."""
        while not stop.is_set():
            try:
                if self.run_once():
                    continue
            except Exception:  # keep following; the next round retries the same batch
                log.exception("projection batch failed; retrying")
                stop.wait(1.0)
            self._wake.wait(interval)
            self._wake.clear()

    # --- rebuilding --------------------------------------------------------------------------

    def reset(self, models: Sequence[ReadModel] | None = None) -> None:
        """Drops every row of ``models`` (the whole group when None) and their positions, in one
        transaction."""
        with self.store.transaction() as tx:
            read_positions(tx, [model.name for model in self.models], lock=True)
            for model in self.models if models is None else models:
                model.clear(tx)
                tx.execute("UPDATE projection_positions SET position = 0 WHERE name = ?", (model.name,))


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


def read_positions(tx: Transaction, names: Iterable[str], *, lock: bool = False) -> dict[str, int]:
    names = list(names)
    statement = f"SELECT name, position FROM projection_positions WHERE name IN {tx.in_list(names)}"
    if lock and tx.backend == "postgresql":
        statement += " ORDER BY name FOR UPDATE"
    found = dict(tx.fetchall(statement, names))
    return {name: int(found.get(name, 0)) for name in names}


def topics(module: str, *kinds: str) -> tuple[str, ...]:
    """``topics("access_request", "AccessRequest.Submitted")`` -> the library's topic strings."""
    return tuple(f"domain.{module}:{kind}" for kind in kinds)

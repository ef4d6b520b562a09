"""``ENTITLEMENTS_CLOCK=manual``: a manual clock kept in the database.

Every process of one deployment (web workers, the scheduler, ``entitlements tick``) reads the same
time, and the time survives a restart: a manual clock that started again at the wall-clock time
after being moved two weeks ahead would make time go back for the events already recorded."""

from __future__ import annotations

from datetime import datetime

from domain.clock import as_utc, cannot_go_back
from projections.deadlines import fixed, moment
from projections.store import ViewStore

TABLE = "manual_clock"


class StoredClock:
    """A clock that only moves when told to (``set``), shared through the database. It starts at
    ``start`` (the wall-clock time when the deployment first used it) and never goes back."""

    def __init__(self, store: ViewStore, start: datetime) -> None:
        self._store = store
        with store.transaction() as tx:
            tx.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id INTEGER PRIMARY KEY CHECK (id = 1), now TEXT NOT NULL)")
            tx.execute(f"INSERT INTO {TABLE} (id, now) VALUES (1, ?) ON CONFLICT (id) DO NOTHING", (fixed(as_utc(start)),))

    def now(self) -> datetime:
        with self._store.transaction(write=False) as tx:
            row = tx.fetchone(f"SELECT now FROM {TABLE} WHERE id = 1")
        return moment(row[0])

    def set(self, when: datetime) -> None:
        """Moves the clock to ``when``; raises ``ClockCannotGoBack`` for a time before its own."""
        wanted = fixed(as_utc(when))
        with self._store.transaction() as tx:
            tx.execute(f"UPDATE {TABLE} SET now = ? WHERE id = 1 AND now <= ?", (wanted, wanted))
            (current,) = tx.fetchone(f"SELECT now FROM {TABLE} WHERE id = 1")
        if current != wanted:
            raise cannot_go_back(moment(current), moment(wanted))

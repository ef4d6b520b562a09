"""Reading the event log for projections: only the columns a read model needs, with the topic
filter in SQL, decoded without building the library's event objects.

The rows are the ones the ``eventsourcing`` library's recorder writes (its events table, named by
``recorder.events_table_name``; on SQLite the notification id is the ``rowid``). The state is the
library's JSON; its typed values (``{"_type_": "datetime_iso", "_data_": "..."}``) at the top
level of an event are reduced to their text, so read models keep ISO timestamps as text. A test
checks this decoding against the library's own mapper for every kind of event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import orjson
from eventsourcing.application import Application

from projections.store import Transaction, ViewStore


@dataclass(frozen=True, slots=True)
class LogEvent:
    position: int
    originator_id: str
    version: int
    topic: str  # "domain.access_request:AccessRequest.Submitted"
    kind: str  # "AccessRequest.Submitted"
    data: dict[str, Any]

    @property
    def timestamp(self) -> str:
        return self.data["timestamp"]


def decode_state(state: bytes | bytearray | memoryview | str) -> dict[str, Any]:
    data = orjson.loads(bytes(state) if isinstance(state, memoryview) else state)
    for key, value in data.items():
        if type(value) is dict and "_type_" in value and "_data_" in value:
            data[key] = value["_data_"]
    return data


def canonical_uuid(text: str) -> str:
    """SQLite keeps ids as 32 hex digits; read models use the dashed form everywhere."""
    if len(text) == 32:
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
    return text


def make_event(position: int, originator_id: Any, version: int, topic: str, state: Any) -> LogEvent:
    return LogEvent(
        position=position,
        originator_id=canonical_uuid(str(originator_id)),
        version=version,
        topic=topic,
        kind=topic[topic.index(":") + 1 :],
        data=decode_state(state),
    )


class EventLog:
    """The application's event log, read through the read-model store's connections."""

    def __init__(self, app: Application, store: ViewStore) -> None:
        self.store = store
        recorder = app.recorder
        table = recorder.events_table_name
        if store.backend == "postgresql":
            schema = recorder.datastore.schema or "public"
            self._table = f'"{schema}"."{table}"'
            self._id = "notification_id"
            self._originator = "originator_id::text"
        else:
            self._table = f'"{table}"'
            self._id = "rowid"
            self._originator = "originator_id"

    def head(self) -> int:
        """The position of the last event recorded."""
        with self.store.transaction(write=False) as tx:
            return self.head_in(tx)

    def head_in(self, tx: Transaction) -> int:
        """The position of the last event recorded, as ``tx`` sees it."""
        row = tx.fetchone(f"SELECT MAX({self._id}) FROM {self._table}")
        return int(row[0] or 0) if row else 0

    def read(self, after: int, *, stop: int, limit: int, topics: Sequence[str]) -> list[LogEvent]:
        """Up to ``limit`` events after position ``after`` and up to ``stop``, of these topics."""
        with self.store.transaction(write=False, binary=True) as tx:
            rows = tx.fetchall(
                f"SELECT {self._id}, {self._originator}, originator_version, topic, state FROM {self._table}"
                f" WHERE {self._id} > ? AND {self._id} <= ? AND topic IN {tx.in_list(topics)}"
                f" ORDER BY {self._id} LIMIT {int(limit)}",
                (after, stop, *topics),
            )
        return [make_event(*row) for row in rows]

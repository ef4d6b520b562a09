"""The event log as auditors read it: every event with its position, originator, type, version,
timestamp, actor and data, in log order, straight from the log (never from a copy kept beside it).

An event is shown as :func:`audit_event` makes it, the same shape in ``/audit/events``, a request's
trail and each line of ``entitlements audit export``: ``data`` is the event's recorded state with
the library's typed values reduced to text (timestamps in ISO 8601, ids in their dashed form), and
without ``timestamp`` and ``actor``, which are fields of their own.

A request's trail is the request's own events and the events of its assignment that belong to it:
those naming the request (opened, closed, delivering, extended, removed) and, from the delivery it
started to the end of that access (or the next delivery of the assignment), the events of that
access (resources delivered or failed, delivered, reminded, expired). An extension's trail has,
besides its own events, the events of the access after the extension.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Sequence

import orjson

from projections.deadlines import fixed
from projections.event_log import EventLog, canonical_uuid
from projections.store import Transaction

# The most log rows one page of ``/audit/events`` reads while looking for events that match its
# filters: a page may hold fewer than ``limit`` events (even none) with a ``next_cursor``, so a
# filter that matches rarely never makes one call read the whole log.
SCAN_BUDGET = 20_000

_ENDING = ("Assignment.AccessExpired", "Assignment.Removed")


def plain(value: Any) -> Any:
    """The library's typed values (``{"_type_": "datetime_iso", "_data_": ...}``) reduced to text,
    at any depth."""
    if type(value) is dict:
        if "_type_" in value and "_data_" in value and len(value) == 2:
            data = value["_data_"]
            return canonical_uuid(data) if value["_type_"] == "uuid_hex" and isinstance(data, str) else plain(data)
        return {key: plain(item) for key, item in value.items()}
    if type(value) is list:
        return [plain(item) for item in value]
    return value


def audit_event(position: int, originator_id: Any, version: int, topic: str, state: Any) -> dict[str, Any]:
    """One event as auditors see it (``/audit/events``, a trail, an export line)."""
    text = bytes(state) if isinstance(state, memoryview) else state
    data = orjson.loads(text)
    typed = text.count(b'"_type_"' if isinstance(text, bytes) else '"_type_"')  # at most: some may sit in strings
    timestamp = data.pop("timestamp", None)
    if type(timestamp) is dict:  # the library's typed datetime, in every event
        typed -= "_type_" in timestamp
        timestamp = plain(timestamp)
    if typed > 0:
        for key, value in data.items():
            if type(value) is dict and "_type_" in value:
                data[key] = plain(value)
                typed -= 1
        if typed > 0:  # nested ones
            data = plain(data)
    actor = data.pop("actor", None)
    return {
        "position": int(position),
        "originator_id": canonical_uuid(str(originator_id)),
        "type": topic[topic.index(":") + 1 :],
        "version": int(version),
        "timestamp": timestamp,
        "actor": actor,
        "data": data,
    }


@dataclass(frozen=True)
class EventFilter:
    """What ``/audit/events`` may be narrowed to; ``since``/``until`` are compared as instants."""

    types: tuple[str, ...] = ()  # "AccessRequest.Submitted"
    originator_id: str | None = None
    since: str | None = None  # ISO 8601 text, normalised by the caller to UTC ``isoformat()``
    until: str | None = None

    def matches_time(self, event: dict[str, Any]) -> bool:
        if self.since is None and self.until is None:
            return True
        moment = utc_text(event["timestamp"]) if event["timestamp"] else None
        if moment is None:
            return False
        return (self.since is None or moment >= self.since) and (self.until is None or moment < self.until)


def utc_text(text: str) -> str:
    """An ISO 8601 instant as text that sorts in time order (``deadlines.fixed``)."""
    return fixed(text)


class AuditLog:
    """Reads the application's event log for auditors (through :class:`EventLog`'s table names)."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.store = log.store
        self.sqlite = log.store.backend == "sqlite"

    # --- SQL pieces --------------------------------------------------------------------------

    @property
    def _select(self) -> str:
        log = self.log
        return f"SELECT {log._id}, {log._originator}, originator_version, topic, state FROM {log._table}"

    def _stored_id(self, originator_id: str) -> str:
        """An originator id as the log stores it (SQLite: 32 hex digits)."""
        return uuid.UUID(originator_id).hex if self.sqlite else str(uuid.UUID(originator_id))

    # --- reads -------------------------------------------------------------------------------

    def head(self) -> int:
        return self.log.head()

    def page(
        self, *, after: int, limit: int, topics: Sequence[str] = (), where: EventFilter = EventFilter()
    ) -> tuple[list[dict[str, Any]], int, bool]:
        """Up to ``limit`` events after position ``after`` that match; answers them, the position
        read up to, and whether the log goes on beyond it (as it was when read)."""
        found: list[dict[str, Any]] = []
        conditions = [f"{self.log._id} > ?", f"{self.log._id} <= ?"]
        with self.store.transaction(write=False, binary=True) as tx:
            head = self.log.head_in(tx)
            extra: list[Any] = []
            if topics:
                conditions.append(f"topic IN {tx.in_list(topics)}")
                extra.extend(topics)
            if where.originator_id:
                conditions.append("originator_id = ?")
                extra.append(self._stored_id(where.originator_id))
            scanned_to, budget = after, SCAN_BUDGET
            while len(found) < limit and scanned_to < head and budget > 0:
                chunk = min(budget, max(limit * 2, 500))
                rows = tx.fetchall(
                    f"{self._select} WHERE {' AND '.join(conditions)} ORDER BY {self.log._id} LIMIT {chunk}",
                    (scanned_to, head, *extra),
                )
                budget -= chunk
                for row in rows:
                    event = audit_event(*row)
                    scanned_to = event["position"]
                    if where.matches_time(event):
                        found.append(event)
                        if len(found) == limit:
                            break
                if len(rows) < chunk and len(found) < limit:
                    scanned_to = head  # nothing more matches up to the head
        return found, scanned_to, scanned_to < head

    def events_of(self, tx: Transaction, originator_id: str, *, up_to: int | None = None) -> list[dict[str, Any]]:
        """Every event of one aggregate in log order (up to position ``up_to``)."""
        statement = f"{self._select} WHERE originator_id = ?"
        params: list[Any] = [self._stored_id(originator_id)]
        if up_to is not None:
            statement += f" AND {self.log._id} <= ?"
            params.append(up_to)
        rows = tx.fetchall(statement + " ORDER BY originator_version", params)
        return [audit_event(*row) for row in rows]

    def trail(self, request_id: str) -> list[dict[str, Any]] | None:
        """The request's events and those of its assignment that belong to it, in log order;
        None when no request has that id."""
        try:
            uuid.UUID(request_id)
        except ValueError:
            return None
        with self.store.transaction(write=False, binary=True) as tx:
            own = self.events_of(tx, request_id)
            if not own or own[0]["type"] != "AccessRequest.Submitted":
                return None
            assignment_id = own[0]["data"].get("assignment_id")
            assignment = self.events_of(tx, assignment_id) if assignment_id else []
        return sorted(own + assignment_events_of(request_id, assignment), key=lambda event: event["position"])


def assignment_events_of(request_id: str, events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events of an assignment (in order) that belong to request ``request_id``."""
    belongs: list[dict[str, Any]] = []
    following = False  # inside the access that this request delivered or extended
    for event in events:
        kind, data = event["type"], event["data"]
        names_it = data.get("request_id") == request_id
        if kind == "Assignment.Delivering":
            following = names_it
        elif kind == "Assignment.Extended" and names_it:
            following = True
        if names_it or following:
            belongs.append(event)
        if kind in _ENDING:
            following = False
    return belongs

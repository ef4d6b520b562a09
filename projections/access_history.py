"""The access history read model: every period in which a user held an access package, for
``/audit/access`` ("who held this package at that moment", "what did this user hold").

A period begins with the assignment's ``Delivering`` (the access that a request's approval, or an
administrator's direct assignment, grants) and ends with its ``AccessExpired`` or ``Removed``. The
user holds the package from ``granted_at``, the later of the delivery's start and the moment it
was recorded (access requested to start later is recorded at approval), until ``ended_at`` (the
moment its end was recorded), or for as long as it has not ended. An extension moves the planned
``end`` and is listed in ``extended_by``; the period goes on. Exactly: a user holds a package at T
when a period has ``granted_at <= T < ended_at`` (or no end yet), which is what replaying the
assignment's events recorded up to T says (``tests/integration/test_access_history.py`` checks it
against such a replay over random histories).

Who approved a period (stage by stage) is taken from the facts of the request that granted it
when the delivery is projected (the facts run first; approvals precede the delivery and never
change after it), and kept in the period's row, so the question reads one table.
"""

from __future__ import annotations

from typing import Any, Sequence

from projections.deadlines import fixed
from projections.engine import LogEvent, ReadModel, split_read_position, topics, with_read_position
from projections.facts import FactsModel
from projections.paging import Page, decode_cursor, encode_cursor, MAX_LIMIT
from projections.store import Transaction, dumps, loads

NAME = "access_history"
PERIODS = "access_periods"
ASSIGNMENTS = "access_period_assignments"


def instant(text: str | None) -> str | None:
    """An ISO 8601 moment as text that sorts in time order (``deadlines.fixed``: UTC, fixed width;
    a time of an old log beyond what UTC can hold is the first or last moment)."""
    return None if text is None else fixed(text)


def approvals_of(request: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Who approved a request, stage by stage; an administrator's direct assignment is stage 0."""
    if request is None:
        return []
    if request.get("request_type") == "admin_add":
        return [{"stage": 0, "user_id": request["requestor_id"], "reason": None, "decided_at": request["submitted_at"]}]
    return [
        {"stage": stage["number"], "user_id": stage["decided_by"], "reason": stage["reason"], "decided_at": stage["decided_at"]}
        for stage in request.get("stages") or []
        if stage.get("decision") == "approved"
    ]


class AccessHistoryReadModel(ReadModel):
    name = NAME
    topics = topics(
        "assignment",
        "Assignment.Created",
        "Assignment.Delivering",
        "Assignment.Extended",
        "Assignment.AccessExpired",
        "Assignment.Removed",
    )
    tables = (
        f"""CREATE TABLE IF NOT EXISTS {ASSIGNMENTS} (
            assignment_id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            access_package_id TEXT NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS {PERIODS} (
            granted_position BIGINT PRIMARY KEY,
            assignment_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            access_package_id TEXT NOT NULL,
            request_id TEXT NOT NULL,
            policy_id TEXT,
            policy_version INTEGER,
            granted_at TEXT NOT NULL,
            planned_end TEXT,
            ended_at TEXT,
            ended_position BIGINT,
            end_reason TEXT,
            ended_by TEXT,
            extended_by TEXT NOT NULL,
            approved_by TEXT NOT NULL)""",
        # newest grant first from the instant asked about, a page stopping at its limit of holders;
        # ended_at in the index: ended periods are passed over without reading their rows
        f"CREATE INDEX IF NOT EXISTS access_periods_by_package_time ON {PERIODS} (access_package_id, granted_at, granted_position, ended_at)",
        f"CREATE INDEX IF NOT EXISTS access_periods_by_user_time ON {PERIODS} (user_id, granted_at, granted_position, ended_at)",
        f"CREATE INDEX IF NOT EXISTS access_periods_by_assignment ON {PERIODS} (assignment_id, granted_position)",
    )

    def __init__(self, facts: FactsModel) -> None:
        self.source = facts
        self.sources = (facts,)

    def apply(self, tx: Transaction, events: Sequence[LogEvent], *, after: int) -> None:
        created = {
            e.originator_id: (e.data["user_id"], e.data["access_package_id"])
            for e in events
            if e.kind == "Assignment.Created"
        }
        tx.insert_many(
            f"INSERT INTO {ASSIGNMENTS} (assignment_id, user_id, access_package_id)",
            ((aid, user, package) for aid, (user, package) in created.items()),
            conflict="ON CONFLICT (assignment_id) DO NOTHING",
            types=("text", "text", "text"),
        )
        touched = {e.originator_id for e in events if e.kind != "Assignment.Created"}
        if not touched:
            return
        owners = dict(created)
        for aid, user, package in tx.fetch_where_in(
            f"SELECT assignment_id, user_id, access_package_id FROM {ASSIGNMENTS}", "assignment_id", touched - set(created)
        ):
            owners[aid] = (user, package)
        # the open period of each touched assignment (at most one: a delivery needs the access ended)
        latest: dict[str, dict[str, Any]] = {}
        for aid, granted_position, planned_end, extended_by in tx.fetch_where_in(
            "SELECT assignment_id, granted_position, planned_end, extended_by"
            f" FROM (SELECT * FROM {PERIODS} WHERE ended_at IS NULL) AS open_periods",
            "assignment_id",
            touched,
        ):
            latest[aid] = {"granted_position": granted_position, "planned_end": planned_end, "ended": False,
                           "extended_by": loads(extended_by), "changes": {}}
        new: dict[int, dict[str, Any]] = {}
        replaced: list[dict[str, Any]] = []  # periods of this batch's assignments that a later delivery follows
        for event in events:
            kind, data, aid = event.kind, event.data, event.originator_id
            if kind == "Assignment.Delivering":
                user, package = owners.get(aid, (None, None))
                if user is None:
                    continue  # an assignment whose creation this log does not hold
                start = instant(data.get("start")) or instant(event.timestamp)
                period = {
                    "granted_position": event.position,
                    "assignment_id": aid,
                    "user_id": user,
                    "access_package_id": package,
                    "request_id": data["request_id"],
                    "policy_id": data.get("policy_id"),
                    "policy_version": data.get("policy_version"),
                    "granted_at": max(start, instant(event.timestamp)),
                    "planned_end": instant(data.get("end")),
                    "extended_by": [],
                }
                new[event.position] = period
                if aid in latest:
                    replaced.append(latest[aid])  # its changes (its end) are still to be written
                latest[aid] = {"granted_position": event.position, "planned_end": period["planned_end"],
                               "ended": False, "extended_by": period["extended_by"], "changes": period, "new": True}
                continue
            current = latest.get(aid)
            if current is None or current["ended"]:
                continue
            changes = current["changes"]
            if kind == "Assignment.Extended":
                current["extended_by"].append(data["request_id"])
                changes["extended_by"] = current["extended_by"]
                changes["planned_end"] = instant(data.get("end"))
            else:  # AccessExpired, Removed
                current["ended"] = True
                changes.update(
                    ended_at=instant(event.timestamp),
                    ended_position=event.position,
                    end_reason="expired" if kind == "Assignment.AccessExpired" else "removed",
                    ended_by=data.get("actor"),
                )
        requests = self.source.facts.requests_by_id(tx, {p["request_id"] for p in new.values()})
        for period in new.values():
            period["approved_by"] = approvals_of(requests.get(period["request_id"]))
        columns = ("granted_position", "assignment_id", "user_id", "access_package_id", "request_id", "policy_id",
                   "policy_version", "granted_at", "planned_end", "ended_at", "ended_position", "end_reason",
                   "ended_by", "extended_by", "approved_by")
        tx.insert_many(
            f"INSERT INTO {PERIODS} ({', '.join(columns)})",
            (
                tuple(dumps(p.get(c, [])) if c in ("extended_by", "approved_by") else p.get(c) for c in columns)
                for p in new.values()
            ),
            types=("bigint", "text", "text", "text", "text", "text", "integer", "text", "text", "text", "bigint",
                   "text", "text", "text", "text"),
        )
        for current in [*replaced, *latest.values()]:
            changes = current["changes"]
            if current.get("new") or not changes:
                continue
            assignments = ", ".join(f"{column} = ?" for column in changes)
            values = [dumps(v) if column == "extended_by" else v for column, v in changes.items()]
            tx.execute(f"UPDATE {PERIODS} SET {assignments} WHERE granted_position = ?",
                       (*values, current["granted_position"]))

    # --- the question ------------------------------------------------------------------------

    def held_at(
        self,
        tx: Transaction,
        *,
        at: str,
        access_package_id: str | None = None,
        user_id: str | None = None,
        limit: int,
        cursor: str | None = None,
    ) -> Page:
        """The periods that include the moment ``at`` (ISO 8601), of a package and/or a user,
        latest granted first (read along the index from ``at`` back, so a page stops as soon as
        it has ``limit`` holders)."""
        moment = instant(at)
        conditions, params = ["granted_at <= ?", "(ended_at IS NULL OR ended_at > ?)"], [moment, moment]
        if access_package_id is not None:
            conditions.append("access_package_id = ?")
            params.append(access_package_id)
        if user_id is not None:
            conditions.append("user_id = ?")
            params.append(user_id)
        if cursor:
            granted_at, position = decode_cursor(cursor, (str, int))
            conditions.append("(granted_at < ? OR (granted_at = ? AND granted_position < ?))")
            params.extend([granted_at, granted_at, position])
        limit = max(1, min(int(limit), MAX_LIMIT))
        # one statement: the page's periods found in the index alone (ended ones passed over
        # without reading their rows), then only their rows read, by key
        order = "granted_at DESC, granted_position DESC"
        select = (
            "SELECT user_id, access_package_id, assignment_id, request_id, policy_id, policy_version, granted_at,"
            f" planned_end, ended_at, end_reason, ended_by, extended_by, granted_position, approved_by FROM {PERIODS}"
            f" WHERE granted_position IN (SELECT granted_position FROM {PERIODS} WHERE {' AND '.join(conditions)}"
            f" ORDER BY {order} LIMIT {limit + 1})"
        )
        # with the read model's position, in the same statement (engine.with_read_position)
        position, rows = split_read_position(tx.fetchall(*with_read_position(self.name, select, params, order)), key=12)
        more = len(rows) > limit
        rows = rows[:limit]
        items = [
            {
                "user_id": r[0],
                "access_package_id": r[1],
                "assignment_id": r[2],
                "request_id": r[3],
                "policy_id": r[4],
                "policy_version": r[5],
                "granted_at": r[6],
                "planned_end": r[7],
                "ended_at": r[8],
                "end_reason": r[9],
                "ended_by": r[10],
                "extended_by": loads(r[11]),
                "granted_position": r[12],
                "approved_by": loads(r[13]),
            }
            for r in rows
        ]
        return Page(items=items, next_cursor=encode_cursor([rows[-1][6], rows[-1][12]]) if more and rows else None, position=position)

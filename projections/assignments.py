"""The assignments read model: a user's access (``GET /me/assignments``): package, state, start,
end, the request that granted it, and its latest extension (an item keeps the same size however
often access is extended)."""

from __future__ import annotations

from typing import Any

from projections.facts import ASSIGNMENT_TOPICS, PACKAGE_TOPICS, FactsReadModel, Touched
from projections.paging import Page, keyset_page
from projections.store import Transaction, dumps, loads

NAME = "assignments"
TABLE = "assignment_views"


def assignment_item(assignment: dict, package_name: str) -> dict[str, Any]:
    extensions = assignment["grants"][1:]  # the approved extensions of the current grant period
    return {
        "id": assignment["id"],
        "user_id": assignment["user_id"],
        "access_package_id": assignment["access_package_id"],
        "access_package_name": package_name,
        "state": assignment["state"],
        "delivery_state": assignment["delivery_state"],
        "start": assignment["start"],
        "end": assignment["end"],
        "request_id": assignment["request_id"],
        # bounded however often access was extended: the latest extension and how many there were
        "last_extension_request_id": extensions[-1] if extensions else None,
        "extension_count": len(extensions),
        "granted_at": assignment["granted_at"],
        "ended_at": assignment["ended_at"],
        "extension_allowed": bool((assignment.get("extension") or {}).get("allowed")),
        "open_request_id": assignment["open_request_id"],
    }


class AssignmentsReadModel(FactsReadModel):
    name = NAME
    topics = ASSIGNMENT_TOPICS + PACKAGE_TOPICS
    grants = False
    tables = (
        f"""CREATE TABLE IF NOT EXISTS {TABLE} (
            assignment_id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            access_package_id TEXT NOT NULL,
            sort_position BIGINT NOT NULL,
            item TEXT NOT NULL)""",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_by_user ON {TABLE} (user_id, sort_position, assignment_id)",
    )

    def project(self, tx: Transaction, touched: Touched) -> None:
        granted = [a for a in touched.assignments.values() if a["state"] is not None]
        if not granted:
            return
        names = touched.names_of(tx, {a["access_package_id"] for a in granted})
        tx.insert_many(
            f"INSERT INTO {TABLE} (assignment_id, user_id, access_package_id, sort_position, item)",
            (
                (
                    a["id"],
                    a["user_id"],
                    a["access_package_id"],
                    a["granted_position"],
                    dumps(assignment_item(a, names[a["access_package_id"]])),
                )
                for a in granted
            ),
            conflict="ON CONFLICT (assignment_id) DO UPDATE SET sort_position = excluded.sort_position, item = excluded.item",
            types=("text", "text", "text", "bigint", "text"),
        )

    # --- queries -----------------------------------------------------------------------------

    def of_user(self, tx: Transaction, user_id: str, *, limit: int, cursor: str | None) -> Page:
        """``user_id``'s access, most recently granted first."""
        return keyset_page(
            tx,
            select=f"SELECT item, sort_position, assignment_id FROM {TABLE}",
            where="user_id = ?",
            params=(user_id,),
            key_columns=("sort_position", "assignment_id"),
            key_types=(int, str),
            limit=limit,
            cursor=cursor,
            row_to_item=lambda row: loads(row[0]),
        )

    def get(self, tx: Transaction, assignment_id: str) -> dict[str, Any] | None:
        """One assignment's item (the link of emails 18 to 20 names it)."""
        row = tx.fetchone(f"SELECT item FROM {TABLE} WHERE assignment_id = ?", (assignment_id,))
        return loads(row[0]) if row else None

"""The directory read model: users as configured (name, email, organization, manager, roles), for
authorization and for showing who someone is."""

from __future__ import annotations

from typing import Any, Sequence

from projections.engine import LogEvent, ReadModel, topics
from projections.store import Transaction, dumps, loads

NAME = "directory"
TABLE = "directory_users"


class DirectoryReadModel(ReadModel):
    name = NAME
    topics = topics("user", "User.Registered", "User.Reconfigured")
    tables = (
        f"""CREATE TABLE IF NOT EXISTS {TABLE} (
            originator_id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL UNIQUE,
            data TEXT NOT NULL)""",
    )

    def apply(self, tx: Transaction, events: Sequence[LogEvent], *, after: int) -> None:
        known = dict(
            tx.fetch_where_in(
                f"SELECT originator_id, user_id FROM {TABLE}", "originator_id", {e.originator_id for e in events}
            )
        )
        users: dict[str, tuple[str, dict]] = {}
        for event in events:
            user_id = event.data.get("key") or known.get(event.originator_id)
            if user_id is None:
                continue
            known[event.originator_id] = user_id
            settings = event.data.get("settings") or {}
            users[event.originator_id] = (
                user_id,
                {
                    "id": user_id,
                    "display_name": settings.get("display_name") or user_id,
                    "email": settings.get("email"),
                    "organization": settings.get("organization"),
                    "manager_id": settings.get("manager"),
                    "external": bool(settings.get("external", False)),
                    "roles": list(settings.get("roles") or []),
                },
            )
        tx.insert_many(
            f"INSERT INTO {TABLE} (originator_id, user_id, data)",
            ((oid, user_id, dumps(data)) for oid, (user_id, data) in users.items()),
            conflict="ON CONFLICT (originator_id) DO UPDATE SET data = excluded.data",
            types=("text", "text", "text"),
        )

    def get(self, tx: Transaction, user_id: str) -> dict[str, Any] | None:
        row = tx.fetchone(f"SELECT data FROM {TABLE} WHERE user_id = ?", (user_id,))
        return loads(row[0]) if row else None

    def get_many(self, tx: Transaction, user_ids: set[str]) -> dict[str, dict[str, Any]]:
        """The users ``user_ids`` that are known, by id."""
        return {user_id: loads(data) for user_id, data in tx.fetch_where_in(f"SELECT user_id, data FROM {TABLE}", "user_id", user_ids)}

    def reports_of(self, tx: Transaction, manager_id: str) -> list[dict[str, Any]]:
        """The users whose manager is ``manager_id``, by name. It reads the whole directory (the
        manager is kept inside each entry, not in a column of its own): fine for the directories
        of the demo and the tests, to be indexed before directories of 100,000 users."""
        manager = "data::json->>'manager_id'" if tx.backend == "postgresql" else "json_extract(data, '$.manager_id')"
        rows = tx.fetchall(f"SELECT data FROM {TABLE} WHERE {manager} = ?", (manager_id,))
        return sorted((loads(row[0]) for row in rows), key=lambda user: (user["display_name"].casefold(), user["id"]))

    def by_email(self, tx: Transaction, email: str) -> list[dict[str, Any]]:
        """The users whose email is ``email`` (case aside), for signing in with OpenID Connect.
        Like :meth:`reports_of`, it reads the whole directory."""
        column = "data::json->>'email'" if tx.backend == "postgresql" else "json_extract(data, '$.email')"
        rows = tx.fetchall(f"SELECT data FROM {TABLE} WHERE lower({column}) = ?", (email.strip().lower(),))
        return [loads(row[0]) for row in rows]

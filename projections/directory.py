"""The directory read model: users as configured (name, email, organization, manager, roles), for
authorization and for showing who someone is."""

from __future__ import annotations

import json
from typing import Any, Sequence

from projections.engine import LogEvent, ReadModel, topics
from projections.store import Transaction, dumps

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

    def apply(self, tx: Transaction, events: Sequence[LogEvent]) -> None:
        ids = sorted({e.originator_id for e in events})
        known = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            known.update(tx.fetchall(f"SELECT originator_id, user_id FROM {TABLE} WHERE originator_id IN {tx.in_list(chunk)}", chunk))
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
        tx.executemany(
            f"INSERT INTO {TABLE} (originator_id, user_id, data) VALUES (?, ?, ?)"
            " ON CONFLICT (originator_id) DO UPDATE SET data = excluded.data",
            ((oid, user_id, dumps(data)) for oid, (user_id, data) in users.items()),
        )

    def get(self, tx: Transaction, user_id: str) -> dict[str, Any] | None:
        row = tx.fetchone(f"SELECT data FROM {TABLE} WHERE user_id = ?", (user_id,))
        return json.loads(row[0]) if row else None

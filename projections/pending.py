"""The pending-approvals read model: per approver, the requests awaiting their decision now.

A request is pending for the current stage's primary approvers, and for its alternate approvers
once the stage is escalated. It leaves everyone's list the moment any approver decides, it
expires, or it is cancelled (the seed: "the request is completed and is no longer available for
the other approvers")."""

from __future__ import annotations

from projections.facts import (
    PACKAGE_TOPICS,
    PENDING_APPROVAL,
    REQUEST_TOPICS,
    FactsReadModel,
    Touched,
    current_stage,
    deciders,
    list_item,
)
from projections.paging import Page, keyset_page
from projections.store import Transaction, dumps, loads

NAME = "pending"
TABLE = "pending_approvals"


def approvers_now(request: dict) -> list[str]:
    """Who may decide ``request`` now (none once it is no longer pending)."""
    stage = current_stage(request)
    if request["own_state"] != PENDING_APPROVAL or stage is None:
        return []
    return deciders(request, stage)


class PendingReadModel(FactsReadModel):
    name = NAME
    topics = REQUEST_TOPICS + PACKAGE_TOPICS  # what the access became does not matter while pending
    tables = (
        f"""CREATE TABLE IF NOT EXISTS {TABLE} (
                approver_id TEXT NOT NULL,
            request_id TEXT NOT NULL,
            sort_position BIGINT NOT NULL,
            item TEXT NOT NULL,
            PRIMARY KEY (approver_id, request_id))""",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_by_request ON {TABLE} (request_id)",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_by_approver ON {TABLE} (approver_id, sort_position, request_id)",
    )

    def project(self, tx: Transaction, touched: Touched) -> None:
        changed = list(touched.requests.values())
        if not changed:
            return
        tx.delete_where_in(TABLE, "request_id", (r["id"] for r in changed))
        rows = []
        pending = [r for r in changed if approvers_now(r)]
        names = touched.names_of(tx, {r["access_package_id"] for r in pending})
        for request in pending:
            item = dumps(list_item(request, names[request["access_package_id"]]))
            for approver in approvers_now(request):
                rows.append((approver, request["id"], request["submitted_position"], item))
        tx.insert_many(
            f"INSERT INTO {TABLE} (approver_id, request_id, sort_position, item)",
            rows,
            types=("text", "text", "bigint", "text"),
        )

    # --- queries -----------------------------------------------------------------------------

    def of_approver(self, tx: Transaction, approver_id: str, *, limit: int, cursor: str | None) -> Page:
        """Requests awaiting ``approver_id``'s decision, newest first."""
        return keyset_page(
            tx,
            select=f"SELECT item, sort_position, request_id FROM {TABLE}",
            where="approver_id = ?",
            params=(approver_id,),
            key_columns=("sort_position", "request_id"),
            key_types=(int, str),
            limit=limit,
            cursor=cursor,
            row_to_item=lambda row: loads(row[0]),
        )

    def awaits(self, tx: Transaction, approver_id: str, request_id: str) -> bool:
        """Whether ``request_id`` awaits ``approver_id``'s decision now (one primary-key read)."""
        return tx.fetchone(f"SELECT 1 FROM {TABLE} WHERE approver_id = ? AND request_id = ?", (approver_id, request_id)) is not None

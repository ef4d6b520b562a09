"""The approval-history read model: per approver, every request they could decide that is now
decided, expired, cancelled or revoked, with the decision, who made it, the reason and when.

Everyone who could decide a stage sees its outcome and its decision maker (the seed: "the other
approvers can see the request decision and the decision maker"). Who could decide a stage: its
primary approvers, and its alternate approvers once it was escalated. A revoked approval shows as
``revoked``, by whom and why, in the rows of every stage of that request."""

from __future__ import annotations

from projections.facts import FactsReadModel, Touched, deciders, list_item
from projections.paging import Page, keyset_page
from projections.store import Transaction, dumps, loads

NAME = "history"
TABLE = "approval_history"


def history_rows(request: dict, package_name: str) -> list[tuple]:
    rows = []
    base = list_item(request, package_name)
    for stage in request["stages"]:
        if not stage["decision"]:
            continue
        outcome = {
            "stage": stage["number"],
            "decision": stage["decision"],
            "decided_by": stage["decided_by"],
            "reason": stage["reason"],
            "decided_at": stage["decided_at"],
        }
        if request["own_state"] == "revoked":
            outcome.update(
                decision="revoked",
                decided_by=request["revoked_by"],
                reason=request["revocation_reason"],
                decided_at=request["revoked_at"],
                stage_decision=stage["decision"],
                stage_decided_by=stage["decided_by"],
            )
        item = dumps({**base, **outcome})
        for approver in deciders(request, stage):
            rows.append((approver, request["id"], stage["number"], stage["decided_position"], item))
    return rows


class HistoryReadModel(FactsReadModel):
    name = NAME
    tables = (
        f"""CREATE TABLE IF NOT EXISTS {TABLE} (
            approver_id TEXT NOT NULL,
            request_id TEXT NOT NULL,
            stage INTEGER NOT NULL,
            sort_position BIGINT NOT NULL,
            item TEXT NOT NULL,
            PRIMARY KEY (approver_id, request_id, stage))""",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_by_request ON {TABLE} (request_id)",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_by_approver ON {TABLE} (approver_id, sort_position, request_id, stage)",
    )

    def project(self, tx: Transaction, touched: Touched) -> None:
        decided = [r for r in touched.requests.values() if any(stage["decision"] for stage in r["stages"])]
        if not decided:
            return
        names = touched.names_of(tx, {r["access_package_id"] for r in decided})
        rows = [row for r in decided for row in history_rows(r, names[r["access_package_id"]])]
        # A decided stage keeps who could decide it, so rows are only added or changed, never
        # removed: upsert, and leave rows whose item is unchanged untouched (no new row version).
        tx.insert_many(
            f"INSERT INTO {TABLE} (approver_id, request_id, stage, sort_position, item)",
            rows,
            types=("text", "text", "integer", "bigint", "text"),
            conflict=f"ON CONFLICT (approver_id, request_id, stage) DO UPDATE"
            f" SET sort_position = excluded.sort_position, item = excluded.item"
            f" WHERE {TABLE}.item <> excluded.item OR {TABLE}.sort_position <> excluded.sort_position",
        )

    # --- queries -----------------------------------------------------------------------------

    def of_approver(self, tx: Transaction, approver_id: str, *, limit: int, cursor: str | None) -> Page:
        """What ``approver_id`` could decide and is decided now, most recent decision first."""
        return keyset_page(
            tx,
            select=f"SELECT item, sort_position, request_id, stage FROM {TABLE}",
            where="approver_id = ?",
            params=(approver_id,),
            key_columns=("sort_position", "request_id", "stage"),
            key_types=(int, str, int),
            limit=limit,
            cursor=cursor,
            row_to_item=lambda row: loads(row[0]),
        )

"""The requests read model: a request's details (``GET /requests/{id}``) and a user's own requests
(``GET /me/requests``, newest first)."""

from __future__ import annotations

from typing import Any

from projections.facts import FactsReadModel, Touched, display_state
from projections.paging import Page, keyset_page
from projections.store import Transaction, dumps, loads

NAME = "requests"
TABLE = "request_details"


def stage_state(request: dict, stage: dict) -> str:
    if stage["decision"]:
        return stage["decision"]
    if stage["number"] == request["current_stage"] and request["own_state"] == "pending_approval":
        return "pending"
    return "not_started"


def details(request: dict, package_name: str) -> dict[str, Any]:
    return {
        "id": request["id"],
        "request_type": request["request_type"],
        "requestor_id": request["requestor_id"],
        "target_user_id": request["target_user_id"],
        "access_package_id": request["access_package_id"],
        "access_package_name": package_name,
        "catalog_id": request["catalog_id"],
        "policy_id": request["policy_id"],
        "policy_version": request["policy_version"],
        "assignment_id": request["assignment_id"],
        "justification": request["justification"],
        "questions": request["questions"],
        "answers": request["answers"],
        "start": request["start"],
        "end": request["end"],
        "submitted_at": request["submitted_at"],
        "expires_at": request["expires_at"],
        "closed_at": request["closed_at"],
        "state": display_state(request),
        "current_stage": request["current_stage"],
        "cancelled_by": request["cancelled_by"],
        "revoked_by": request["revoked_by"],
        "revoked_at": request["revoked_at"],
        "revocation_reason": request["revocation_reason"],
        "position": request["updated_position"],
        "stages": [
            {
                "number": stage["number"],
                "state": stage_state(request, stage),
                "approvers": stage["approvers"],
                "alternate_approvers": stage["alternate_approvers"],
                "escalation_enabled": stage["escalation_enabled"],
                "escalated": stage["escalated_at"] is not None,
                "escalated_at": stage["escalated_at"],
                "started_at": stage["started_at"],
                "deadline": stage["deadline"],
                "reminder_at": stage["reminder_at"],
                "reminded_at": stage["reminded_at"],
                "escalation_at": stage["escalation_at"],
                "decision": stage["decision"],
                "decided_by": stage["decided_by"],
                "reason": stage["reason"],
                "decided_at": stage["decided_at"],
            }
            for stage in request["stages"]
        ],
    }


SUMMARY_FIELDS = (
    "request_type",
    "access_package_id",
    "access_package_name",
    "requestor_id",
    "target_user_id",
    "state",
    "current_stage",
    "submitted_at",
    "expires_at",
)


def summary(request_details: dict[str, Any]) -> dict[str, Any]:
    """The list item of ``/me/requests`` (``facts.list_item``) from a request's details."""
    return {"request_id": request_details["id"], **{field: request_details[field] for field in SUMMARY_FIELDS}}


class RequestsReadModel(FactsReadModel):
    name = NAME
    tables = (
        f"""CREATE TABLE IF NOT EXISTS {TABLE} (
            request_id TEXT PRIMARY KEY,
            requestor_id TEXT NOT NULL,
            target_user_id TEXT NOT NULL,
            sort_position BIGINT NOT NULL,
            item TEXT NOT NULL)""",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_by_requestor ON {TABLE} (requestor_id, sort_position)",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_by_target ON {TABLE} (target_user_id, sort_position)",
    )

    def project(self, tx: Transaction, touched: Touched) -> None:
        requests = list(touched.requests.values())
        if not requests:
            return
        names = touched.names_of(tx, {r["access_package_id"] for r in requests})
        tx.insert_many(
            f"INSERT INTO {TABLE} (request_id, requestor_id, target_user_id, sort_position, item)",
            (
                (
                    r["id"],
                    r["requestor_id"],
                    r["target_user_id"],
                    r["submitted_position"],
                    dumps(details(r, names[r["access_package_id"]])),
                )
                for r in requests
            ),
            conflict="ON CONFLICT (request_id) DO UPDATE SET item = excluded.item",
            types=("text", "text", "text", "bigint", "text"),
        )

    # --- queries -----------------------------------------------------------------------------

    def get(self, tx: Transaction, request_id: str) -> dict[str, Any] | None:
        row = tx.fetchone(f"SELECT item FROM {TABLE} WHERE request_id = ?", (request_id,))
        return None if row is None else loads(row[0])

    def of_user(self, tx: Transaction, user_id: str, *, limit: int, cursor: str | None) -> Page:
        """Requests made by ``user_id`` or for them, newest first."""
        return keyset_page(
            tx,
            select=f"SELECT item, sort_position FROM {TABLE}",
            where="(requestor_id = ? OR target_user_id = ?)",
            params=(user_id, user_id),
            key_columns=("sort_position",),
            key_types=(int,),
            limit=limit,
            cursor=cursor,
            row_to_item=lambda row: summary(loads(row[0])),
        )

"""The requests read model: a request's details (``GET /requests/{id}``) and a user's own requests
(``GET /me/requests``, newest first)."""

from __future__ import annotations

from typing import Any

from projections.facts import FactsReadModel, display_state, list_item
from projections.paging import Page, keyset_page
from projections.store import Transaction, loads

NAME = "requests"


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
                "decision": stage["decision"],
                "decided_by": stage["decided_by"],
                "reason": stage["reason"],
                "decided_at": stage["decided_at"],
            }
            for stage in request["stages"]
        ],
    }


class RequestsReadModel(FactsReadModel):
    """Its facts are its rows: the requests table of its facts, indexed for ``/me/requests``."""

    name = NAME
    facts_options = {"details": True}
    view_tables = (
        f"CREATE INDEX IF NOT EXISTS {NAME}_by_requestor ON {NAME}_requests (requestor_id, submitted_position)",
        f"CREATE INDEX IF NOT EXISTS {NAME}_by_target ON {NAME}_requests (target_user_id, submitted_position)",
    )

    # --- queries -----------------------------------------------------------------------------

    def get(self, tx: Transaction, request_id: str) -> dict[str, Any] | None:
        row = tx.fetchone(f"SELECT data FROM {self.facts.requests_table} WHERE request_id = ?", (request_id,))
        if row is None:
            return None
        request = loads(row[0])
        name = self.facts.names_of(tx, {request["access_package_id"]})[request["access_package_id"]]
        return details(request, name)

    def of_user(self, tx: Transaction, user_id: str, *, limit: int, cursor: str | None) -> Page:
        """Requests made by ``user_id`` or for them, newest first."""
        page = keyset_page(
            tx,
            select=f"SELECT data, submitted_position FROM {self.facts.requests_table}",
            where="(requestor_id = ? OR target_user_id = ?)",
            params=(user_id, user_id),
            key_columns=("submitted_position",),
            key_types=(int,),
            limit=limit,
            cursor=cursor,
            row_to_item=lambda row: loads(row[0]),
        )
        names = self.facts.names_of(tx, {r["access_package_id"] for r in page.items})
        page.items = [list_item(r, names[r["access_package_id"]]) for r in page.items]
        return page

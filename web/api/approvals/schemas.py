"""What awaits the caller's decision, and what they could decide that is decided."""

from __future__ import annotations

import marshmallow as ma

from web.api.schemas import TIMESTAMP, RequestListItemSchema, page_schema

HISTORY_DECISIONS = ("approved", "denied", "expired", "revoked", "cancelled")


class HistoryItemSchema(RequestListItemSchema):
    """A decided stage of a request the caller could decide."""

    stage = ma.fields.Integer(metadata={"description": "the stage this outcome is about"})
    decision = ma.fields.String(required=True, metadata={"description": ", ".join(HISTORY_DECISIONS)})
    decided_by = ma.fields.String(required=True, allow_none=True, metadata={"description": "user id, or `system`"})
    reason = ma.fields.String(required=True, allow_none=True)
    decided_at = ma.fields.String(required=True, allow_none=True, metadata=TIMESTAMP)
    stage_decision = ma.fields.String(metadata={"description": "for a revoked approval: the stage's own decision"})
    stage_decided_by = ma.fields.String(metadata={"description": "for a revoked approval: who approved the stage"})


PendingPageSchema = page_schema(RequestListItemSchema, "PendingPageSchema")
HistoryPageSchema = page_schema(HistoryItemSchema, "HistoryPageSchema")

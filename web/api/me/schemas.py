"""The caller's own requests and access."""

from __future__ import annotations

import marshmallow as ma

from web.api.schemas import TIMESTAMP, RequestListItemSchema, page_schema

ASSIGNMENT_STATES = ("delivering", "delivered", "partially_delivered", "access_extended", "access_expired", "removed")


class AssignmentSchema(ma.Schema):
    """Access a user holds (or held) to one access package."""

    id = ma.fields.String(required=True)
    user_id = ma.fields.String()
    access_package_id = ma.fields.String(required=True)
    access_package_name = ma.fields.String(required=True)
    state = ma.fields.String(required=True, metadata={"description": ", ".join(ASSIGNMENT_STATES)})
    delivery_state = ma.fields.String(
        allow_none=True,
        metadata={"description": "how far delivery got: delivering, delivered or partially_delivered"},
    )
    start = ma.fields.String(required=True, allow_none=True, metadata=TIMESTAMP)
    end = ma.fields.String(required=True, allow_none=True, metadata={**TIMESTAMP, "description": "null: never ends"})
    request_id = ma.fields.String(required=True, allow_none=True, metadata={"description": "the request that granted it"})
    last_extension_request_id = ma.fields.String(
        allow_none=True, metadata={"description": "the latest approved extension of this access; null: none"}
    )
    extension_count = ma.fields.Integer(
        metadata={"description": "how many approved extensions this access has had since it was granted"}
    )
    granted_at = ma.fields.String(allow_none=True, metadata=TIMESTAMP)
    ended_at = ma.fields.String(allow_none=True, metadata=TIMESTAMP)
    extension_allowed = ma.fields.Boolean()
    open_request_id = ma.fields.String(allow_none=True, metadata={"description": "a pending request for this package"})


MyRequestPageSchema = page_schema(RequestListItemSchema, "MyRequestPageSchema")
AssignmentPageSchema = page_schema(AssignmentSchema, "AssignmentPageSchema")

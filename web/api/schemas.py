"""Schemas shared by several resources: write receipts, list pages, request list items."""

from __future__ import annotations

import marshmallow as ma

from projections.paging import DEFAULT_LIMIT, MAX_LIMIT
from web.api.fields import Cursor

TIMESTAMP = {"format": "date-time", "description": "ISO 8601, with timezone"}


class ReceiptSchema(ma.Schema):
    """What every write answers."""

    id = ma.fields.String(required=True, metadata={"description": "the request's (or assignment's) id"})
    state = ma.fields.String(required=True, metadata={"description": "its state after the write"})
    position = ma.fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "event-log position of its last event: send it as `X-Min-Position` to read your write"},
    )


class ListQueryArgsSchema(ma.Schema):
    limit = ma.fields.Integer(
        load_default=DEFAULT_LIMIT,
        validate=ma.validate.Range(min=1, max=MAX_LIMIT),
        metadata={"description": f"items per page, 1 to {MAX_LIMIT}"},
    )
    cursor = Cursor(
        load_default=None,
        metadata={"description": "`next_cursor` of the previous page; none for the first page"},
    )


def page_schema(item_schema: type[ma.Schema], name: str, *, order: str = "newest first") -> type[ma.Schema]:
    """``{items: [...], next_cursor}`` for one kind of item."""
    return type(
        name,
        (ma.Schema,),
        {
            "__doc__": f"A page of {item_schema.__name__.removesuffix('Schema')} items, {order}.",
            "items": ma.fields.List(ma.fields.Nested(item_schema), required=True),
            "next_cursor": ma.fields.String(
                required=True, allow_none=True, metadata={"description": "the next page's `cursor`; null on the last page"}
            ),
        },
    )


class RequestListItemSchema(ma.Schema):
    """A request in a list (pending approvals, history, own requests)."""

    request_id = ma.fields.String(required=True)
    request_type = ma.fields.String(metadata={"description": "user_add, user_extend or admin_add"})
    access_package_id = ma.fields.String(required=True)
    access_package_name = ma.fields.String(required=True)
    requestor_id = ma.fields.String(required=True)
    target_user_id = ma.fields.String(required=True)
    state = ma.fields.String(required=True)
    current_stage = ma.fields.Integer(required=True, metadata={"description": "0 before the first stage starts"})
    submitted_at = ma.fields.String(required=True, metadata=TIMESTAMP)
    expires_at = ma.fields.String(
        required=True, allow_none=True, metadata={**TIMESTAMP, "description": "deadline of the current stage"}
    )

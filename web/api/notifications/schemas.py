"""The outbox of numbered emails."""

from __future__ import annotations

import marshmallow as ma

from domain import limits
from web.api.fields import Identifier, Text
from web.api.schemas import TIMESTAMP, ListQueryArgsSchema, page_schema

STATUSES = (
    "pending (not sent yet, or waiting to be tried again), sending, sent, failed, or skipped (never rendered nor"
    " sent: older than the notifier horizon when the notifier first projected the log; last_error says why)"
)


class NotificationQueryArgsSchema(ListQueryArgsSchema):
    request_id = Identifier(load_default=None, metadata={"description": "only this request's emails"})
    to = Text(
        max_length=limits.MAX_EMAIL, load_default=None, metadata={"description": "only emails to this user id or email address"}
    )


class NotificationSchema(ma.Schema):
    """An email of the outbox."""

    id = ma.fields.String(required=True)
    number = ma.fields.Integer(required=True, metadata={"description": "its number in the seed's table, 1 to 20"})
    subject = ma.fields.String(required=True)
    to = ma.fields.String(required=True, allow_none=True, metadata={"description": "the recipient's email address"})
    recipient_id = ma.fields.String(required=True, metadata={"description": "the recipient's user id"})
    request_id = ma.fields.String(required=True, allow_none=True)
    assignment_id = ma.fields.String(required=True, allow_none=True)
    status = ma.fields.String(required=True, metadata={"description": STATUSES})
    attempts = ma.fields.Integer(required=True, metadata={"description": "delivery attempts so far"})
    last_error = ma.fields.String(required=True, allow_none=True, metadata={"description": "why the last attempt failed, or why it was never sent (failed, skipped)"})
    message_id = ma.fields.String(required=True, metadata={"description": "its Message-ID header, the same on every attempt"})
    created_at = ma.fields.String(required=True, metadata=TIMESTAMP)
    sent_at = ma.fields.String(required=True, allow_none=True, metadata=TIMESTAMP)


NotificationPageSchema = page_schema(NotificationSchema, "NotificationPageSchema")

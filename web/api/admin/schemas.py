"""The manual clock: reading it, moving it forward, and what moving it ran."""

from __future__ import annotations

import marshmallow as ma

from web.api.fields import Instant
from web.api.schemas import TIMESTAMP

class ClockMoveSchema(ma.Schema):
    now = Instant(
        required=True,
        metadata={
            "description": "the new time, not before the clock's time (409 `clock_cannot_go_back`); "
            "outside the years is 400"
        },
    )


class DeadlineRunSchema(ma.Schema):
    kind = ma.fields.String(
        required=True,
        metadata={
            "description": "request_reminder, request_escalation, request_expiry, access_start, "
            "access_expiry_reminder or access_expiry"
        },
    )
    subject_id = ma.fields.String(required=True, metadata={"description": "the request (request_*) or assignment (access_*)"})
    stage = ma.fields.Integer(required=True, allow_none=True, metadata={"description": "the request's stage, for request_*"})
    due_at = ma.fields.String(required=True, metadata=TIMESTAMP)
    outcome = ma.fields.String(
        required=True,
        metadata={"description": "done; skipped (already done, e.g. by the scheduler, or no longer due); failed"},
    )
    state = ma.fields.String(required=True, allow_none=True, metadata={"description": "the subject's state afterwards, when done"})
    detail = ma.fields.String(required=True, allow_none=True, metadata={"description": "why it was skipped or failed"})


class ClockSchema(ma.Schema):
    now = ma.fields.AwareDateTime(required=True, metadata=TIMESTAMP)
    clock = ma.fields.String(required=True, metadata={"description": "`manual`"})


class ClockMovedSchema(ClockSchema):
    previous = ma.fields.AwareDateTime(required=True, metadata={**TIMESTAMP, "description": "the time before the move"})
    ran = ma.fields.List(
        ma.fields.Nested(DeadlineRunSchema),
        required=True,
        metadata={"description": "every deadline that fell due, in the order it ran, each at its own due time"},
    )
    position = ma.fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "event-log position of the last event recorded: send it as `X-Min-Position` to read the results"},
    )

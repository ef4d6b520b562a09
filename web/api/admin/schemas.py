"""The manual clock: reading it, moving it forward, and what moving it ran."""

from __future__ import annotations

from datetime import datetime

import marshmallow as ma

from web.api.schemas import TIMESTAMP

EARLIEST_YEAR, LATEST_YEAR = 1970, 8999  # deadlines up to a century later must still be dates
# The same range in the document (a JSON Schema pattern, searched: anchored at the start), so that
# clients and schemathesis know a time outside it is refused with 400.
YEAR_PATTERN = "^(19[7-9][0-9]|[2-8][0-9]{3})-"


def within_calendar(moment: datetime) -> None:
    if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        raise ma.ValidationError(f"must be a time between the years {EARLIEST_YEAR} and {LATEST_YEAR}")


class ClockMoveSchema(ma.Schema):
    now = ma.fields.AwareDateTime(
        required=True,
        validate=within_calendar,
        metadata={
            **TIMESTAMP,
            "pattern": YEAR_PATTERN,
            "description": "the new time: ISO 8601 with timezone, not before the clock's time "
            f"(409 `clock_cannot_go_back`), in the years {EARLIEST_YEAR} to {LATEST_YEAR} (400 otherwise)",
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

"""The auditor's questions: the log, a request's trail, who held access when, why a decision."""

from __future__ import annotations

import marshmallow as ma

from domain import limits
from domain.events import EVENT_TYPES
from web.api.fields import Cursor, Identifier, Instant, Text
from web.api.schemas import TIMESTAMP, ListQueryArgsSchema, page_schema

MAX_EVENTS_PAGE = 1000


class AuditEventSchema(ma.Schema):
    """An event of the log, as recorded."""

    position = ma.fields.Integer(required=True, metadata={"description": "its position in the log (1, 2, ...)"})
    originator_id = ma.fields.String(required=True, metadata={"description": "the aggregate it belongs to"})
    type = ma.fields.String(required=True, metadata={"description": "AccessRequest.Submitted, Assignment.Delivering, ..."})
    version = ma.fields.Integer(required=True, metadata={"description": "the aggregate's version it made (1 for the first)"})
    timestamp = ma.fields.String(required=True, allow_none=True, metadata=TIMESTAMP)
    actor = ma.fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "who caused it: a user id, `system` for the scheduler, `tenant-file` for configuration loaded from a file"},
    )
    data = ma.fields.Dict(required=True, metadata={"description": "what the event recorded (its other fields)"})


class AuditEventQueryArgsSchema(ma.Schema):
    after = ma.fields.Integer(
        load_default=0, validate=ma.validate.Range(min=0, max=2**63 - 1),
        metadata={"description": "events after this log position (0: from the start)"},
    )
    limit = ma.fields.Integer(
        load_default=100, validate=ma.validate.Range(min=1, max=MAX_EVENTS_PAGE),
        metadata={"description": f"events per page, 1 to {MAX_EVENTS_PAGE}"},
    )
    cursor = Cursor(load_default=None, metadata={"description": "`next_cursor` of the previous page (instead of `after`)"})
    type = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(sorted(EVENT_TYPES))), load_default=None,
        metadata={"description": "only events of these types (repeat the parameter for several)"},
    )
    originator_id = ma.fields.UUID(load_default=None, metadata={"description": "only this aggregate's events"})
    since = Instant(load_default=None, metadata={"description": "only events recorded at or after this moment"})
    until = Instant(load_default=None, metadata={"description": "only events recorded before this moment"})


class AuditEventPageSchema(ma.Schema):
    """A page of the log, oldest first. A page can hold fewer than `limit` events and still have a
    `next_cursor`: with filters, one page reads at most 20,000 events of the log."""

    items = ma.fields.List(ma.fields.Nested(AuditEventSchema), required=True)
    next_cursor = ma.fields.String(
        required=True, allow_none=True,
        metadata={"description": "the next page's `cursor`; null when the page reached the log's head (ask again later with `after`)"},
    )
    position = ma.fields.Integer(required=True, metadata={"description": "the log position this page read up to: the next page's `after`"})


class TrailSchema(ma.Schema):
    request_id = ma.fields.String(required=True)
    items = ma.fields.List(ma.fields.Nested(AuditEventSchema), required=True, metadata={"description": "in log order"})


class AccessQueryArgsSchema(ListQueryArgsSchema):
    access_package_id = Identifier(
        load_default=None,
        metadata={"description": "who held this package; give it, `user_id` or both (neither: 422 `subject_missing`)"},
    )
    user_id = Identifier(load_default=None, metadata={"description": "what this user held"})
    at = Instant(required=True, metadata={"description": "the moment asked about"})


class ApprovalSchema(ma.Schema):
    stage = ma.fields.Integer(required=True, metadata={"description": "0 for an administrator's direct assignment"})
    user_id = ma.fields.String(required=True, allow_none=True)
    reason = ma.fields.String(required=True, allow_none=True)
    decided_at = ma.fields.String(required=True, allow_none=True, metadata=TIMESTAMP)


class AccessPeriodSchema(ma.Schema):
    """A period in which a user held a package."""

    user_id = ma.fields.String(required=True)
    access_package_id = ma.fields.String(required=True)
    assignment_id = ma.fields.String(required=True)
    request_id = ma.fields.String(required=True, metadata={"description": "the request that granted it"})
    policy_id = ma.fields.String(required=True, allow_none=True)
    policy_version = ma.fields.Integer(required=True, allow_none=True, metadata={"description": "the policy version it was granted under"})
    granted_at = ma.fields.String(required=True, metadata={**TIMESTAMP, "description": "held from this moment"})
    ended_at = ma.fields.String(required=True, allow_none=True, metadata={**TIMESTAMP, "description": "held until this moment; null: not ended"})
    planned_end = ma.fields.String(required=True, allow_none=True, metadata={**TIMESTAMP, "description": "when it is (or was) due to end"})
    end_reason = ma.fields.String(required=True, allow_none=True, metadata={"description": "expired or removed (a revocation or an administrator's removal)"})
    ended_by = ma.fields.String(required=True, allow_none=True)
    extended_by = ma.fields.List(ma.fields.String(), required=True, metadata={"description": "the extension requests that moved its end"})
    approved_by = ma.fields.List(ma.fields.Nested(ApprovalSchema), required=True, metadata={"description": "who approved the granting request, stage by stage"})
    granted_position = ma.fields.Integer(required=True, metadata={"description": "log position of the delivery that began it"})


AccessPeriodPageSchema = page_schema(AccessPeriodSchema, "AccessPeriodPageSchema")


class ExplanationSchema(ma.Schema):
    """Why a request was decided as it was, stage by stage (see the README's Auditors section)."""

    class Meta:
        unknown = ma.INCLUDE

    request_id = ma.fields.String(required=True)
    request_type = ma.fields.String(required=True)
    requestor_id = ma.fields.String(required=True)
    target_user_id = ma.fields.String(required=True)
    access_package_id = ma.fields.String(required=True)
    policy_id = ma.fields.String(required=True)
    policy_version = ma.fields.Integer(required=True, allow_none=True)
    policy = ma.fields.Dict(required=True, allow_none=True, metadata={"description": "the policy's settings at that version"})
    submitted_at = ma.fields.String(required=True, metadata=TIMESTAMP)
    submitted_position = ma.fields.Integer(required=True)
    directory_at_submission = ma.fields.Dict(required=True, metadata={
        "description": "`manager_of_target` and the directory `group_members` of every group the rules name, as at submission"})
    stages = ma.fields.List(ma.fields.Dict(), required=True, metadata={
        "description": "number, rules, approvers and alternate_approvers (each {user_id, why}), used_fallback, "
        "started_at, deadline, escalation_at, reminders, escalation, decision, decided_by, decided_at, reason, "
        "decision_position, shown_to_approver (the details as of the decision's position)"})
    outcome = ma.fields.Dict(required=True, allow_none=True, metadata={"description": "the request's last decisive event"})

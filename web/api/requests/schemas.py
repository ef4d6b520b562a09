"""Access requests: submitting one, its details, and deciding, cancelling or revoking it."""

from __future__ import annotations

import marshmallow as ma

from domain import limits
from web.api.fields import Answers, Identifier, Instant, Text
from web.api.schemas import TIMESTAMP

DECISIONS = ("approve", "deny")


class RequestCreateSchema(ma.Schema):
    """A request for an access package, for oneself or (a manager) on behalf of a direct report."""

    access_package_id = Identifier(required=True, validate=ma.validate.Length(min=1))
    policy_id = Identifier(
        load_default=None, allow_none=True, metadata={"description": "which policy of the package; the first that allows it if left out"}
    )
    target_user_id = Identifier(
        load_default=None, allow_none=True, metadata={"description": "who the access is for; the caller if left out"}
    )
    justification = Text(max_length=limits.MAX_JUSTIFICATION, load_default=None, allow_none=True)
    answers = Answers(
        load_default=None,
        allow_none=True,
        metadata={"description": "answers to the policy's questions, by question id"},
    )
    start = Instant(load_default=None, allow_none=True, metadata={"description": "when access should start"})
    end = Instant(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "when access should end: after `start` and after now (else 400 `invalid_schedule` naming "
            "`end` in `details.fields`)"
        },
    )


class DecisionCreateSchema(ma.Schema):
    """An approver's decision for the current stage; the first decision wins."""

    decision = ma.fields.String(required=True, validate=ma.validate.OneOf(DECISIONS))
    reason = Text(max_length=limits.MAX_REASON, load_default=None, allow_none=True)


class CancellationCreateSchema(ma.Schema):
    """The requestor withdraws a pending request."""

    reason = Text(max_length=limits.MAX_REASON, load_default=None, allow_none=True)


class RevocationCreateSchema(ma.Schema):
    """The approver who approved undoes the approval; the access is removed."""

    reason = Text(max_length=limits.MAX_REASON, required=True, validate=ma.validate.Length(min=1))


class StageSchema(ma.Schema):
    number = ma.fields.Integer(required=True)
    state = ma.fields.String(required=True, metadata={"description": "not_started, pending, approved, denied, expired"})
    approvers = ma.fields.List(ma.fields.String(), required=True)
    alternate_approvers = ma.fields.List(ma.fields.String(), required=True)
    escalation_enabled = ma.fields.Boolean()
    escalated = ma.fields.Boolean(required=True)
    escalated_at = ma.fields.String(allow_none=True, metadata=TIMESTAMP)
    started_at = ma.fields.String(allow_none=True, metadata=TIMESTAMP)
    deadline = ma.fields.String(allow_none=True, metadata=TIMESTAMP)
    reminder_at = ma.fields.String(
        allow_none=True, metadata={**TIMESTAMP, "description": "when undecided approvers are reminded; null: no reminder"}
    )
    reminded_at = ma.fields.String(allow_none=True, metadata={**TIMESTAMP, "description": "when they were reminded"})
    escalation_at = ma.fields.String(
        allow_none=True, metadata={**TIMESTAMP, "description": "when the stage goes to its alternates, with escalation"}
    )
    decision = ma.fields.String(required=True, allow_none=True)
    decided_by = ma.fields.String(required=True, allow_none=True)
    reason = ma.fields.String(required=True, allow_none=True)
    decided_at = ma.fields.String(required=True, allow_none=True, metadata=TIMESTAMP)


class QuestionSchema(ma.Schema):
    id = ma.fields.String(required=True)
    text = ma.fields.String()


class RequestSchema(ma.Schema):
    """A request's details."""

    id = ma.fields.String(required=True)
    request_type = ma.fields.String()
    requestor_id = ma.fields.String(required=True)
    target_user_id = ma.fields.String(required=True)
    access_package_id = ma.fields.String(required=True)
    access_package_name = ma.fields.String()
    catalog_id = ma.fields.String(allow_none=True)
    policy_id = ma.fields.String(required=True)
    policy_version = ma.fields.Integer(allow_none=True)
    assignment_id = ma.fields.String(allow_none=True)
    justification = ma.fields.String(required=True, allow_none=True)
    questions = ma.fields.List(ma.fields.Nested(QuestionSchema))
    answers = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Raw(allow_none=True), required=True)
    start = ma.fields.String(allow_none=True, metadata=TIMESTAMP)
    end = ma.fields.String(allow_none=True, metadata=TIMESTAMP)
    submitted_at = ma.fields.String(required=True, metadata=TIMESTAMP)
    expires_at = ma.fields.String(required=True, allow_none=True, metadata=TIMESTAMP)
    closed_at = ma.fields.String(allow_none=True, metadata=TIMESTAMP)
    state = ma.fields.String(required=True)
    current_stage = ma.fields.Integer(required=True)
    cancelled_by = ma.fields.String(allow_none=True)
    revoked_by = ma.fields.String(allow_none=True)
    revoked_at = ma.fields.String(allow_none=True, metadata=TIMESTAMP)
    revocation_reason = ma.fields.String(allow_none=True)
    position = ma.fields.Integer(metadata={"description": "event-log position of its last event"})
    stages = ma.fields.List(ma.fields.Nested(StageSchema), required=True)

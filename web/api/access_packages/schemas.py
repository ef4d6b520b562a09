"""The access packages a caller may request, with what a request form needs of each policy."""

from __future__ import annotations

import marshmallow as ma

from domain import limits
from web.api.fields import Text
from web.api.schemas import ListQueryArgsSchema, page_schema


class AccessPackageQueryArgsSchema(ListQueryArgsSchema):
    search = Text(
        max_length=limits.MAX_NAME,
        load_default=None,
        metadata={
            "description": "only packages whose name or description holds this text, letter case aside "
            "(spaces around it are ignored; empty: every package)"
        },
    )


class PolicyQuestionSchema(ma.Schema):
    """A question of a policy, as configured: its answer goes in the request's `answers` under its id."""

    id = ma.fields.String(required=True)
    text = ma.fields.String(required=True)
    required = ma.fields.Boolean(required=True, metadata={"description": "a request must answer it"})
    choices = ma.fields.List(
        ma.fields.String(), required=True, metadata={"description": "the only answers accepted; empty: any text"}
    )


class PolicyExpirationSchema(ma.Schema):
    """When access granted under the policy ends: exactly one of the three."""

    after = ma.fields.String(metadata={"description": "an ISO 8601 duration from the start of access, e.g. P365D"})
    on = ma.fields.String(metadata={"format": "date", "description": "access lasts through this day (UTC)"})
    never = ma.fields.Boolean(metadata={"description": "true: access does not end by itself"})


class RequestablePolicySchema(ma.Schema):
    """A policy under which the caller may request the package: send its id as `policy_id`."""

    id = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    description = ma.fields.String(required=True, allow_none=True)
    questions = ma.fields.List(ma.fields.Nested(PolicyQuestionSchema), required=True)
    requestor_justification_required = ma.fields.Boolean(
        required=True, metadata={"description": "a request must give a `justification`"}
    )
    approval_required = ma.fields.Boolean(
        required=True, metadata={"description": "false: a request is approved (and access delivered) at once"}
    )
    expiration = ma.fields.Nested(PolicyExpirationSchema, required=True)


class AccessPackageSchema(ma.Schema):
    """An access package the caller may request, with the policies they may request it under (in
    the package's order: a request naming no `policy_id` is made under the first)."""

    id = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    description = ma.fields.String(required=True, allow_none=True)
    catalog_id = ma.fields.String(required=True)
    catalog_name = ma.fields.String(required=True)
    policies = ma.fields.List(ma.fields.Nested(RequestablePolicySchema), required=True, validate=ma.validate.Length(min=1))


AccessPackagePageSchema = page_schema(AccessPackageSchema, "AccessPackagePageSchema", order="by name (letter case aside), then id")

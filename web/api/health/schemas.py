"""Liveness and readiness."""

from __future__ import annotations

import marshmallow as ma


class HealthSchema(ma.Schema):
    status = ma.fields.String(required=True, metadata={"description": "`ok`"})


class ReadModelStatusSchema(ma.Schema):
    position = ma.fields.Integer(required=True, metadata={"description": "last event-log position processed"})
    lag = ma.fields.Integer(required=True, metadata={"description": "events behind the head of the log"})


class ReadinessSchema(ma.Schema):
    ready = ma.fields.Boolean(required=True)
    head = ma.fields.Integer(required=True, metadata={"description": "the event log's last position"})
    read_models = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(ReadModelStatusSchema), required=True)

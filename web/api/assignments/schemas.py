"""Assignments: asking to keep access longer."""

from __future__ import annotations

import marshmallow as ma


class ExtensionCreateSchema(ma.Schema):
    """The holder of an assignment asks for an extension."""

    justification = ma.fields.String(load_default=None, allow_none=True)

"""Assignments: asking to keep access longer."""

from __future__ import annotations

import marshmallow as ma

from domain import limits
from web.api.fields import Text


class ExtensionCreateSchema(ma.Schema):
    """The holder of an assignment asks for an extension."""

    justification = Text(max_length=limits.MAX_JUSTIFICATION, load_default=None, allow_none=True)

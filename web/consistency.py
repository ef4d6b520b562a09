"""Read-your-writes: every write answers the log ``position`` of its last event; a read sent with
``X-Min-Position: N`` is answered from read models that have processed N, or not at all (503).

With ``project_inline`` (no projector process, e.g. tests or a single small process) the read
brings the read models up to date itself; otherwise it wakes the projector and waits for it.
Every read answers ``X-Position``: the position all read models had reached when it was made.
"""

from __future__ import annotations

import marshmallow as ma
import orjson
from flask import Response

from domain.application import Receipt
from projections.paging import Page
from web.context import services, web_context
from web.errors import ApiError

MIN_POSITION_HEADER = "X-Min-Position"
POSITION_HEADER = "X-Position"

POSITION_HEADER_DOC = {
    POSITION_HEADER: {
        "description": "the event-log position every read model had processed when this answer was read",
        "schema": {"type": "integer", "minimum": 0},
    }
}


class MinPositionHeaderSchema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE  # every other header

    min_position = ma.fields.Integer(
        data_key=MIN_POSITION_HEADER,
        strict=False,
        validate=ma.validate.Range(min=0),
        load_default=None,
        metadata={
            "description": "answer only from read models that have processed this event-log position "
            "(the `position` a write answered); 503 `read_models_behind` when they do not in time"
        },
    )


def lowest_position() -> int:
    positions = services().read_models.positions()
    return min(positions.values()) if positions else 0


def at_least(min_position: int | None) -> int:
    """Makes sure the read models have processed ``min_position``; answers the lowest position."""
    context = web_context()
    read_models = context.services.read_models
    position = lowest_position()
    if min_position is None or position >= min_position:
        return position
    if context.project_inline:
        read_models.catch_up()
    else:
        read_models.wait_for(min_position, timeout=context.read_wait_seconds)
    position = lowest_position()
    if position < min_position:
        raise ApiError(
            503,
            "read_models_behind",
            f"the read models have not yet processed position {min_position}; try again shortly",
            {"position": position, "wanted": min_position},
            headers={"Retry-After": "1"},
        )
    return position


def read_headers(position: int) -> dict[str, str]:
    return {POSITION_HEADER: str(position)}


def page_response(page: Page, position: int) -> Response:
    """A list page as JSON, serialized at once: its items come from read models whose rows were
    written in the shape the page schema documents, so a field-by-field marshmallow dump (a third
    of a list request's time) would only copy them. ``tests/e2e/test_openapi.py`` checks that
    every page answered validates against the schema."""
    body = orjson.dumps({"items": page.items, "next_cursor": page.next_cursor})
    return Response(body, status=200, mimetype="application/json", headers=read_headers(position))


def written(receipt: Receipt) -> Receipt:
    """After a successful write: tells the projector there is something new."""
    services().read_models.projector.wake()
    return receipt

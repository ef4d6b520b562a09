"""Read-your-writes: every write answers the log ``position`` of its last event; a read sent with
``X-Min-Position: N`` is answered from read models that have processed N, or not at all (503).

With ``project_inline`` (no projector process, e.g. tests or a single small process) the read
brings the read models up to date itself; otherwise it wakes the projector and waits for it.
Every read answers ``X-Position``: the position its read model had reached when it was made. A
read model stuck on an event (``projection_failures``) answers 503 ``read_model_failed`` at once.
"""

from __future__ import annotations

from typing import Callable

import marshmallow as ma
import orjson
from flask import Response

from domain.application import Receipt
from projections.engine import with_sources
from projections.paging import Page
from web.context import services, web_context
from web.errors import ApiError

MIN_POSITION_HEADER = "X-Min-Position"
POSITION_HEADER = "X-Position"

POSITION_HEADER_DOC = {
    POSITION_HEADER: {
        "description": "the event-log position the read model answering had processed when this answer was read",
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
        # absent means "no wait"; an empty or null value is not an integer and answers 400, so the
        # document says exactly what is accepted: a non-negative integer, not nullable, no default
        allow_none=False,
        metadata={
            "description": "answer only from read models that have processed this event-log position "
            "(the `position` a write answered); 503 `read_models_behind` when they do not in time"
        },
    )


def at_least(min_position: int | None, read_model: str) -> int:
    """Makes sure ``read_model`` (the one the answer is read from) has processed ``min_position``;
    answers its position. 400 ``position_beyond_head`` for a position no write has answered yet;
    503 ``read_model_failed`` at once when it, or a read model it derives
    from, is stuck on an event before that position; 503 ``read_models_behind`` when it does not
    get there in time."""
    context = web_context()
    read_models = context.services.read_models
    position = read_models.positions()[read_model]
    if min_position is None or position >= min_position:
        return position
    head = read_models.head()
    if min_position > head:
        raise ApiError(
            400,
            "position_beyond_head",
            f"{MIN_POSITION_HEADER}: {min_position} is past the last position of the event log ({head}): "
            "send a position a write answered",
            {"fields": {MIN_POSITION_HEADER: [f"at most {head}, the head of the log"]}, "head": head, "wanted": min_position},
        )
    if context.project_inline:
        read_models.catch_up()
    else:
        _refuse_if_stuck(read_model, min_position)
        read_models.wait_for(min_position, timeout=context.read_wait_seconds, names=[read_model])
    position = read_models.positions()[read_model]
    if position < min_position:
        _refuse_if_stuck(read_model, min_position)
        raise ApiError(
            503,
            "read_models_behind",
            f"the {read_model} read model has not yet processed position {min_position}; try again shortly",
            {"read_model": read_model, "position": position, "wanted": min_position},
            headers={"Retry-After": "1"},
        )
    return position


def read_at_least(min_position: int | None, read_model: str, read: Callable[[], Page]) -> Page:
    """``read()``, a page that carries the position its read model had when it was read (one
    statement: ``Page.position``), answered when that position is at least ``min_position``;
    else, as :func:`at_least` does, waits for the read model (or refuses) and reads again. A
    read without ``X-Min-Position`` is one round trip."""
    page = read()
    if min_position is not None and (page.position or 0) < min_position:
        at_least(min_position, read_model)
        page = read()
    return page


def _refuse_if_stuck(read_model: str, min_position: int) -> None:
    read_models = services().read_models
    names = [model.name for model in with_sources([read_models.models[read_model]])]
    for name, failure in read_models.failures().items():
        if name in names and failure.event_position <= min_position:
            raise ApiError(
                503,
                "read_model_failed",
                f"the {read_model} read model cannot reach position {min_position} yet: {failure.describe()}. "
                "It is retried by itself; the operators are told in the log and /readyz",
                {
                    "read_model": read_model,
                    "failing_read_model": name,
                    "position": failure.position,
                    "event_position": failure.event_position,
                    "error": failure.error,
                    "wanted": min_position,
                },
                headers={"Retry-After": "5"},
            )


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

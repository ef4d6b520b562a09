"""``/healthz`` (the process answers) and ``/readyz`` (the database answers; each read model's lag)."""

from __future__ import annotations

import logging

from flask.views import MethodView

from web.api.health.schemas import HealthSchema, ReadinessSchema
from web.auth import public
from web.blueprint import Blueprint
from web.context import services
from web.errors import ApiError

log = logging.getLogger(__name__)

blp = Blueprint("health", __name__, url_prefix="", description="Liveness and readiness, without a token")


@blp.route("/healthz")
@public
class Healthz(MethodView):
    @blp.doc(security=[])
    @blp.response(200, HealthSchema)
    def get(self):
        """Liveness: the process answers"""
        return {"status": "ok"}


@blp.route("/readyz")
@public
class Readyz(MethodView):
    @blp.doc(security=[])
    @blp.response(200, ReadinessSchema)
    @blp.errors(503)
    def get(self):
        """Readiness: the database answers; each read model's position and lag

        503 `read_model_failed` when a read model is stuck on an event of the log: `details` names
        each one with its position, the failing event's position and type, and the error."""
        read_models = services().read_models
        try:
            positions = read_models.positions()
            head = read_models.head()
            failures = read_models.failures()
        except Exception as error:  # whatever the driver raises for a database that does not answer
            log.warning("readiness check failed: %s", error)
            raise ApiError(503, "database_unavailable", "the database does not answer") from None
        readiness = {
            "ready": not failures,
            "head": head,
            "read_models": {
                name: {"position": position, "lag": max(0, head - position)} for name, position in positions.items()
            },
        }
        if failures:
            stuck = {
                name: {
                    "position": failure.position,
                    "event_position": failure.event_position,
                    "event_type": failure.event_type,
                    "error": failure.error,
                    "failing_since": failure.failing_since,
                    "attempts": failure.attempts,
                    "retry_at": failure.retry_at,
                }
                for name, failure in failures.items()
            }
            raise ApiError(
                503,
                "read_model_failed",
                "; ".join(failure.describe() for failure in failures.values()),
                {**readiness, "failures": stuck},
            )
        return readiness

"""``/admin/clock``: with ``ENTITLEMENTS_CLOCK=manual``, time moves only here, so that a test or a
demo walks a 14-day timeline in seconds. With the system clock the resource does not exist (404)."""

from __future__ import annotations

from flask.views import MethodView

from domain.clock import AdjustableClock
from web.api.admin.schemas import ClockMovedSchema, ClockMoveSchema, ClockSchema
from web.auth import ADMIN, current_user, forbidden
from web.blueprint import Blueprint
from web.context import services
from web.errors import ApiError

blp = Blueprint("admin", __name__, url_prefix="/admin", description="Administration: the manual clock")


def manual_clock() -> AdjustableClock:
    """The manual clock, for administrators; 404 with the system clock, 403 for anyone else."""
    clock = services().app.clock
    if not isinstance(clock, AdjustableClock):
        raise ApiError(
            404,
            "not_found",
            "there is no clock to set: the clock is the system clock (ENTITLEMENTS_CLOCK=manual enables this)",
        )
    if ADMIN not in (current_user().get("roles") or []):
        raise forbidden("only administrators may read or move the clock")
    return clock


@blp.route("/clock")
class Clock(MethodView):
    @blp.response(200, ClockSchema)
    @blp.errors(401, 403, 404)
    def get(self):
        """The manual clock's time (admin)"""
        return {"now": manual_clock().now(), "clock": "manual"}

    @blp.arguments(ClockMoveSchema())
    @blp.response(200, ClockMovedSchema)
    @blp.errors(400, 401, 403, 404, 409)
    def post(self, args):
        """Move the manual clock forward and run what fell due (admin)

        Stops at each deadline on the way and runs it at its own time (reminders, escalations,
        expiry of requests, delayed starts, expiry reminders, expiry of access), then answers
        once everything due by `now` has run. Never back: an earlier time is 409
        `clock_cannot_go_back`.
        """
        clock = manual_clock()
        previous = clock.now()
        report = services().scheduler.advance(clock, args["now"])
        services().read_models.projector.wake()  # there may be something new to project
        return {
            "now": clock.now(),
            "clock": "manual",
            "previous": previous,
            "ran": [item.as_dict() for item in report.outcomes],
            "position": report.position,
        }

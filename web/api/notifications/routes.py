"""``/notifications``: the outbox of numbered emails (administrators and auditors)."""

from __future__ import annotations

from flask.views import MethodView

from web.api.notifications.schemas import (
    NotificationPageSchema,
    NotificationQueryArgsSchema,
)
from web.auth import ADMIN, AUDITOR, current_user, forbidden
from web.blueprint import Blueprint
from web.consistency import (
    POSITION_HEADER_DOC,
    MinPositionHeaderSchema,
    at_least,
    page_response,
)
from web.context import services

blp = Blueprint("notifications", __name__, url_prefix="/notifications", description="The outbox of numbered emails")


@blp.route("")
class Notifications(MethodView):
    @blp.arguments(NotificationQueryArgsSchema(), location="query")
    @blp.arguments(MinPositionHeaderSchema(), location="headers", as_kwargs=True)
    @blp.response(200, NotificationPageSchema, headers=POSITION_HEADER_DOC)
    @blp.errors(401, 403, 503)
    def get(self, args, min_position=None):
        """The emails the notifier wrote, newest first, with their delivery status (admin, auditor)"""
        if not {ADMIN, AUDITOR} & set(current_user().get("roles") or []):
            raise forbidden("only administrators and auditors may read the outbox")
        position = at_least(min_position, "notifier")
        return page_response(services().read_models.notifications(**args), position)

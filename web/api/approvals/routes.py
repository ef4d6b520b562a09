"""``/approvals``: the caller's pending decisions and their approval history."""

from __future__ import annotations

from flask.views import MethodView

from web.api.approvals.schemas import HistoryPageSchema, PendingPageSchema
from web.api.schemas import ListQueryArgsSchema
from web.auth import current_user_id
from web.blueprint import Blueprint
from web.consistency import POSITION_HEADER_DOC, MinPositionHeaderSchema, at_least, page_response
from web.context import services

blp = Blueprint("approvals", __name__, url_prefix="/approvals", description="Decisions awaiting the caller, and past ones")


@blp.route("/pending")
class Pending(MethodView):
    @blp.arguments(ListQueryArgsSchema(), location="query")
    @blp.arguments(MinPositionHeaderSchema(), location="headers", as_kwargs=True)
    @blp.response(200, PendingPageSchema, headers=POSITION_HEADER_DOC)
    @blp.errors(401, 503)
    def get(self, args, min_position=None):
        """Requests awaiting the caller's decision now, newest first"""
        position = at_least(min_position, "pending")
        return page_response(services().read_models.pending(current_user_id(), **args), position)


@blp.route("/history")
class History(MethodView):
    @blp.arguments(ListQueryArgsSchema(), location="query")
    @blp.arguments(MinPositionHeaderSchema(), location="headers", as_kwargs=True)
    @blp.response(200, HistoryPageSchema, headers=POSITION_HEADER_DOC)
    @blp.errors(401, 503)
    def get(self, args, min_position=None):
        """Requests the caller could decide that are decided, expired or revoked, with who decided"""
        position = at_least(min_position, "history")
        return page_response(services().read_models.history(current_user_id(), **args), position)

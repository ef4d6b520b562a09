"""``/me``: the caller's own requests and access."""

from __future__ import annotations

from flask.views import MethodView

from web.api.me.schemas import AssignmentPageSchema, MyRequestPageSchema
from web.api.schemas import ListQueryArgsSchema
from web.auth import current_user_id
from web.blueprint import Blueprint
from web.consistency import POSITION_HEADER_DOC, MinPositionHeaderSchema, at_least, page_response
from web.context import services

blp = Blueprint("me", __name__, url_prefix="/me", description="The caller's own requests and access")


@blp.route("/requests")
class MyRequests(MethodView):
    @blp.arguments(ListQueryArgsSchema(), location="query")
    @blp.arguments(MinPositionHeaderSchema(), location="headers", as_kwargs=True)
    @blp.response(200, MyRequestPageSchema, headers=POSITION_HEADER_DOC)
    @blp.errors(401, 503)
    def get(self, args, min_position=None):
        """Requests made by the caller or for them, newest first"""
        position = at_least(min_position, "requests")
        return page_response(services().read_models.requests_of(current_user_id(), **args), position)


@blp.route("/assignments")
class MyAssignments(MethodView):
    @blp.arguments(ListQueryArgsSchema(), location="query")
    @blp.arguments(MinPositionHeaderSchema(), location="headers", as_kwargs=True)
    @blp.response(200, AssignmentPageSchema, headers=POSITION_HEADER_DOC)
    @blp.errors(401, 503)
    def get(self, args, min_position=None):
        """The caller's access: package, state, start, end, most recently granted first"""
        position = at_least(min_position, "assignments")
        return page_response(services().read_models.assignments_of(current_user_id(), **args), position)

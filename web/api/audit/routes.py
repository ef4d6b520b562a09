"""``/audit``: the auditor's questions, answered from the event log and its index read models."""

from __future__ import annotations

import uuid

from flask.views import MethodView

from domain.events import EVENT_TYPES
from projections.audit_log import EventFilter, utc_text
from projections.paging import decode_cursor, encode_cursor
from web.api.audit.schemas import (
    AccessPeriodPageSchema,
    AccessQueryArgsSchema,
    AuditEventPageSchema,
    AuditEventQueryArgsSchema,
    ExplanationSchema,
    TrailSchema,
)
from web.auth import current_user, forbidden, is_auditor
from web.blueprint import Blueprint
from web.consistency import POSITION_HEADER_DOC, MinPositionHeaderSchema, page_response, read_at_least
from web.context import services
from web.errors import ApiError

blp = Blueprint("audit", __name__, url_prefix="/audit", description="For auditors: the decision trail, who held access when")


def auditors_only() -> None:
    if not is_auditor(current_user()):
        raise forbidden("only auditors may read the audit trail")


def unknown_request(request_id: str) -> ApiError:
    return ApiError(404, "unknown_request", f"no request {request_id}", {"request_id": request_id})


def request_id_or_404(request_id: str) -> str:
    try:
        return str(uuid.UUID(request_id))
    except ValueError:
        raise unknown_request(request_id) from None


@blp.route("/events")
class Events(MethodView):
    @blp.arguments(AuditEventQueryArgsSchema(), location="query")
    @blp.response(200, AuditEventPageSchema)
    @blp.errors(400, 401, 403)
    def get(self, args):
        """A page of the whole event log, oldest first (auditors)"""
        auditors_only()
        after = args["after"]
        if args["cursor"]:
            (after,) = decode_cursor(args["cursor"], (int,))
        types = tuple(args["type"] or ())
        where = EventFilter(
            types=types,
            originator_id=str(args["originator_id"]) if args["originator_id"] else None,
            since=utc_text(args["since"].isoformat()) if args["since"] else None,
            until=utc_text(args["until"].isoformat()) if args["until"] else None,
        )
        topics = [topic for name in types for topic in EVENT_TYPES[name]]
        items, position, more = services().read_models.audit_events(after=after, limit=args["limit"], where=where, topics=topics)
        return {"items": items, "next_cursor": encode_cursor([position]) if more else None, "position": position}


@blp.route("/requests/<request_id>/trail")
class Trail(MethodView):
    @blp.response(200, TrailSchema)
    @blp.errors(401, 403, 404)
    def get(self, request_id):
        """A request's events and those of the access it granted, in log order (auditors)"""
        auditors_only()
        request_id = request_id_or_404(request_id)
        trail = services().read_models.trail(request_id)
        if trail is None:
            raise unknown_request(request_id)
        return {"request_id": request_id, "items": trail}


@blp.route("/requests/<request_id>/explain")
class Explanation(MethodView):
    @blp.response(200, ExplanationSchema)
    @blp.errors(401, 403, 404)
    def get(self, request_id):
        """Per stage: who could decide and why, reminders, escalation, the decision and what the approver was shown (auditors)"""
        auditors_only()
        explanation = services().read_models.explanation(request_id_or_404(request_id))
        if explanation is None:
            raise unknown_request(request_id)
        return explanation


@blp.route("/access")
class Access(MethodView):
    @blp.arguments(AccessQueryArgsSchema(), location="query")
    @blp.arguments(MinPositionHeaderSchema(), location="headers", as_kwargs=True)
    @blp.response(200, AccessPeriodPageSchema, headers=POSITION_HEADER_DOC)
    @blp.errors(400, 401, 403, 422, 503)
    def get(self, args, min_position=None):
        """Who held a package (or what a user held) at a moment, and who approved it (auditors)"""
        auditors_only()
        if args["access_package_id"] is None and args["user_id"] is None:
            raise ApiError(422, "subject_missing", "give access_package_id, user_id or both", {"fields": ["access_package_id", "user_id"]})
        def read():
            return services().read_models.access_at(
                at=args["at"].isoformat(), access_package_id=args["access_package_id"], user_id=args["user_id"],
                limit=args["limit"], cursor=args["cursor"],
            )

        page = read_at_least(min_position, "access_history", read)
        return page_response(page, page.position)

"""``/requests``: submit, read, decide, cancel, revoke."""

from __future__ import annotations

from flask import url_for
from flask.views import MethodView

from web.api.requests.schemas import (
    CancellationCreateSchema,
    DecisionCreateSchema,
    RequestCreateSchema,
    RequestSchema,
    RevocationCreateSchema,
)
from web.api.schemas import ReceiptSchema
from web.auth import current_user, current_user_id, forbidden, may_read_request
from web.blueprint import Blueprint
from web.consistency import POSITION_HEADER_DOC, MinPositionHeaderSchema, at_least, read_headers, written
from web.context import services
from web.errors import ApiError

blp = Blueprint("requests", __name__, url_prefix="/requests", description="Access requests and their decisions")


@blp.route("")
class Requests(MethodView):
    @blp.arguments(RequestCreateSchema())
    @blp.errors(401, 403, 404, 409, 422)
    @blp.response(201, ReceiptSchema, headers={"Location": {"description": "the new request", "schema": {"type": "string"}}})
    def post(self, args):
        """Submit a request for an access package"""
        receipt = written(services().app.submit_request(requestor_id=current_user_id(), **args))
        return receipt, {"Location": url_for("requests.RequestById", request_id=receipt.id)}


@blp.route("/<request_id>")
class RequestById(MethodView):
    @blp.arguments(MinPositionHeaderSchema(), location="headers", as_kwargs=True)
    @blp.response(200, RequestSchema, headers=POSITION_HEADER_DOC)
    @blp.errors(401, 403, 404, 503)
    def get(self, request_id, min_position=None):
        """A request's details

        For its requestor, its target, the approvers and alternate approvers of its stages, and auditors.
        """
        position = at_least(min_position, "requests")
        details = services().read_models.request(request_id)
        if details is None:
            raise ApiError(404, "unknown_request", f"no request {request_id}", {"request_id": request_id})
        if not may_read_request(current_user(), details):
            raise forbidden("only the requestor, the target, the request's approvers and auditors may read it")
        return details, read_headers(position)


@blp.route("/<request_id>/decision")
class Decision(MethodView):
    @blp.arguments(DecisionCreateSchema())
    @blp.errors(401, 403, 404, 409, 422)
    @blp.response(200, ReceiptSchema)
    def post(self, args, request_id):
        """Approve or deny the current stage (its approvers)"""
        return written(services().app.decide(request_id=request_id, approver_id=current_user_id(), **args))


@blp.route("/<request_id>/cancel")
class Cancellation(MethodView):
    @blp.arguments(CancellationCreateSchema(), required=False)
    @blp.errors(401, 403, 404, 409)
    @blp.response(200, ReceiptSchema)
    def post(self, args, request_id):
        """Withdraw a pending request (its requestor)"""
        return written(services().app.cancel_request(request_id=request_id, actor_id=current_user_id(), **args))


@blp.route("/<request_id>/revoke")
class Revocation(MethodView):
    @blp.arguments(RevocationCreateSchema())
    @blp.errors(401, 403, 404, 409, 422)
    @blp.response(200, ReceiptSchema)
    def post(self, args, request_id):
        """Undo an approval and remove the access (the approver who approved)"""
        return written(services().app.revoke_approval(request_id=request_id, approver_id=current_user_id(), **args))

"""``/assignments``: extensions of access."""

from __future__ import annotations

from flask import url_for
from flask.views import MethodView

from web.api.assignments.schemas import ExtensionCreateSchema
from web.api.schemas import ReceiptSchema
from web.auth import current_user_id
from web.blueprint import Blueprint
from web.consistency import written
from web.context import services

blp = Blueprint("assignments", __name__, url_prefix="/assignments", description="Access held, and its extension")


@blp.route("/<assignment_id>/extend")
class Extension(MethodView):
    @blp.arguments(ExtensionCreateSchema(), required=False)
    @blp.errors(401, 403, 404, 409, 422)
    @blp.response(
        201, ReceiptSchema, headers={"Location": {"description": "the new extension request", "schema": {"type": "string"}}}
    )
    def post(self, args, assignment_id):
        """Ask to keep access longer (its user)

        Creates a `user_extend` request and answers its id and state (`pending_approval` where the
        policy wants approval, else `access_extended`), with its address in `Location`.
        An extension is asked for only within the policy's `extension.reminder_before` before the
        end of access (without one: the last period of `expiration.after`), one at a time
        (409 `extension_already_requested` while one waits for approval), and never past the
        policy's fixed end date: 422 `extension_too_early`, `extension_past_fixed_end`.
        """
        receipt = written(services().app.request_extension(user_id=current_user_id(), assignment_id=assignment_id, **args))
        return receipt, {"Location": url_for("requests.RequestById", request_id=receipt.id)}

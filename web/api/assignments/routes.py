"""``/assignments``: extensions of access."""

from __future__ import annotations

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
    @blp.arguments(ExtensionCreateSchema, required=False)
    @blp.errors(401, 403, 404, 409, 422)
    @blp.response(200, ReceiptSchema)
    def post(self, args, assignment_id):
        """Ask to keep access longer (its user)

        Answers the extension request's id and state.
        """
        return written(services().app.request_extension(user_id=current_user_id(), assignment_id=assignment_id, **args))

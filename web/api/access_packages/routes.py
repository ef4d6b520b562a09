"""``/access-packages``: the packages the caller may request."""

from __future__ import annotations

from flask.views import MethodView

from web.api.access_packages.schemas import AccessPackagePageSchema, AccessPackageQueryArgsSchema
from web.auth import current_user_id
from web.blueprint import Blueprint
from web.consistency import POSITION_HEADER_DOC, MinPositionHeaderSchema, at_least, page_response
from web.context import services

blp = Blueprint("access_packages", __name__, url_prefix="/access-packages", description="Access packages the caller may request")


@blp.route("")
class AccessPackages(MethodView):
    @blp.arguments(AccessPackageQueryArgsSchema(), location="query")
    @blp.arguments(MinPositionHeaderSchema(), location="headers", as_kwargs=True)
    @blp.response(200, AccessPackagePageSchema, headers=POSITION_HEADER_DOC)
    @blp.errors(401, 503)
    def get(self, args, min_position=None):
        """Access packages the caller may request, by name

        Hidden packages are left out (they are requested by id). Each package lists only the
        policies under which the caller may request it now (requestor scope, with their group
        membership, and a catalog open to them); a package with none is left out. `search` keeps
        those whose name or description holds the text, letter case aside.
        """
        position = at_least(min_position, "catalog")
        return page_response(services().read_models.requestable_packages(current_user_id(), **args), position)

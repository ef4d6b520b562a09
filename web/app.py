"""``create_app(services)``: the Flask application serving the JSON API under ``/api/v1``.

Nothing happens at import time; everything the app works with comes in through ``services``
(built by :func:`entitlements.bootstrap.build_services`).
"""

from __future__ import annotations

from typing import Any

import flask_smorest
from flask import Flask, request

from domain import limits
from entitlements.bootstrap import Services
from web import auth
from web.api.access_packages.routes import blp as access_packages_blp
from web.api.admin.routes import blp as admin_blp
from web.api.approvals.routes import blp as approvals_blp
from web.api.assignments.routes import blp as assignments_blp
from web.api.audit.routes import blp as audit_blp
from web.api.health.routes import blp as health_blp
from web.api.me.routes import blp as me_blp
from web.api.notifications.routes import blp as notifications_blp
from web.api.requests.routes import blp as requests_blp
from web.api.fields import check_json_depth
from web.context import EXTENSION, WebContext
from web.errors import ErrorSchema, handle_http_exception, register_error_handlers
from web.portal import init_portal
from web.portal.errors import error_page

API_PREFIX = "/api/v1"
BLUEPRINTS = (access_packages_blp, requests_blp, me_blp, assignments_blp, approvals_blp, notifications_blp, audit_blp, admin_blp, health_blp)
SECURITY_SCHEME = "bearerAuth"

DEFAULT_CONFIG: dict[str, Any] = {
    "API_TITLE": "entitlements",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": API_PREFIX,
    "OPENAPI_JSON_PATH": "openapi.json",
    # No Swagger UI / ReDoc page: flask-smorest loads their assets from a CDN.
    "API_SPEC_OPTIONS": {
        "info": {
            "description": "Access requests, approvals and delivery. Every call but /healthz and /readyz "
            "needs `Authorization: Bearer TOKEN` (`entitlements tokens create USER_ID`). Errors are "
            '`{"error": {"code", "message", "details"}}`.'
        },
        "security": [{SECURITY_SCHEME: []}],
    },
    "READ_WAIT_SECONDS": 5.0,  # how long a read with X-Min-Position waits for the projector
    "MAX_CONTENT_LENGTH": limits.MAX_BODY_BYTES,  # a larger body is 413 request_too_large
}


def check_body_depth() -> None:
    """Before any view: a JSON body nested deeper than ``MAX_JSON_DEPTH`` is 400 ``json_too_deep``
    (1,000 deep would otherwise exhaust the parser's recursion: a 500), and reading a body over
    ``MAX_CONTENT_LENGTH`` is 413. Every body the API parses as JSON (webargs reads only those
    sent as JSON) passes here first."""
    if request.is_json and (request.content_length or request.headers.get("Transfer-Encoding")):
        check_json_depth(request.get_data(cache=True))


class Api(flask_smorest.Api):
    """flask-smorest's Api, answering (and documenting) errors in this API's format."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error):
        return handle_http_exception(error)


def create_app(services: Services, *, project_inline: bool = False, config: dict[str, Any] | None = None) -> Flask:
    """The web application over ``services``.

    ``project_inline``: there is no projector running beside this app (tests, a single small
    process); a read that asks for a position the read models have not reached brings them up to
    date itself instead of waiting for the projector.
    """
    app = Flask(__name__, static_folder=None)  # no static files: nothing is served from the working directory
    app.config.update(DEFAULT_CONFIG)
    app.config.update(config or {})
    app.extensions[EXTENSION] = WebContext(
        services=services,
        project_inline=project_inline,
        read_wait_seconds=float(app.config["READ_WAIT_SECONDS"]),
    )

    api = Api(app)
    api.spec.components.security_scheme(
        SECURITY_SCHEME, {"type": "http", "scheme": "bearer", "description": "an API token"}
    )
    for blueprint in BLUEPRINTS:
        api.register_blueprint(blueprint, url_prefix=API_PREFIX + blueprint.url_prefix)
    init_portal(app, secret_key=services.secret_key(), settings=services.settings)
    register_error_handlers(app, page=error_page, is_api=lambda path: path.startswith(API_PREFIX + "/"))
    app.before_request(check_body_depth)
    auth.init_app(app)
    return app

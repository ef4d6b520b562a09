"""The portal: pages for people (requestors, approvers), at the root of ``ENTITLEMENTS_BASE_URL``.

Server-rendered (jinja2), reading the same read models as ``web/api`` and writing through the
same application commands; the API's input schemas check what a form sends. Every form carries a
CSRF token (Flask-WTF) and no GET changes anything. See ``web.portal.session`` for sign-in.
"""

from __future__ import annotations

from flask import Blueprint, Flask, request
from flask_wtf.csrf import CSRFError, CSRFProtect

from entitlements.settings import Settings
from entitlements.sign_in import ABSOLUTE_TIMEOUT
from web.portal import session

blp = Blueprint("portal", __name__, template_folder="templates", static_folder="static", static_url_path="/static")
csrf = CSRFProtect()


@blp.before_request
def _check_csrf() -> None:
    """Every form a page posts carries the session's CSRF token, or nothing is done."""
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()


blp.before_request(session.load_person)


@blp.before_request
def _bring_read_models_up() -> None:
    """Without a projector beside the app (``project_inline``: the embedded mode, tests), a
    page first brings the read models up to date: a person sees what was just done, by anyone."""
    from web.context import web_context

    context = web_context()
    if context.project_inline and request.method == "GET":
        context.services.read_models.catch_up()


@blp.after_request
def _page_headers(response):
    """A page is about one signed-in person and may carry a sign-in link's secret in its address:
    no cache keeps it, no other site learns its address (Referer) or shows it in a frame."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.endpoint != "portal.static":
        response.headers["Cache-Control"] = "no-store"
    return response


from web.portal import pages  # noqa: E402,F401  (its views are the blueprint's)
from web.portal.errors import csrf_refused  # noqa: E402
from web.portal.oidc import init_oidc  # noqa: E402


def init_portal(app: Flask, *, secret_key: str, settings: Settings) -> None:
    """Registers the portal's pages on ``app``, with its session cookie and CSRF settings."""
    app.config.update(
        SECRET_KEY=secret_key,
        SESSION_COOKIE_NAME="entitlements_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        PERMANENT_SESSION_LIFETIME=ABSOLUTE_TIMEOUT,
        # checked by the portal's own before_request (every POST of a page), not on the API's
        # token-authenticated JSON calls, which no browser sends with a cookie
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session; the session has the timeouts
    )
    csrf.init_app(app)
    init_oidc(app, settings)
    app.register_blueprint(blp)
    app.register_error_handler(CSRFError, csrf_refused)

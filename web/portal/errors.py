"""Error pages for people: 403, 404, a form that came without its CSRF token, and anything
unexpected, as a page with the portal's title and navigation (never JSON or a traceback)."""

from __future__ import annotations

import logging

from flask import Response, g, render_template
from flask_wtf.csrf import CSRFError

from web.portal.session import load_person

log = logging.getLogger(__name__)

TITLES = {
    400: "This request could not be understood",
    403: "You may not see this page",
    404: "Page not found",
    405: "This page does not accept that",
    409: "This changed in the meantime",
    413: "What you sent is too large",
    422: "This cannot be done",
}
CSRF_MESSAGE = (
    "This form had expired or did not come from this site, so nothing was changed. "
    "Go back, reload the page and try again."
)


def error_page(status: int, message: str):
    title = TITLES.get(status, "Something went wrong" if status >= 500 else "This cannot be done")
    try:
        if "person" not in g:  # no page of the portal ran (an unknown address): who is signed in, for the navigation
            load_person()
    except Exception:  # the database gone: the page without the navigation
        log.exception("the person of an error page could not be read")
        g.person = None
    try:
        return render_template("error.html", status=status, title=title, message=message), status
    except Exception:  # the page itself failed (a broken template, the database gone): plain text
        log.exception("the error page could not be rendered")
        return Response(f"{title}\n\n{message}\n", status=status, mimetype="text/plain")


def csrf_refused(error: CSRFError):
    return error_page(400, CSRF_MESSAGE)

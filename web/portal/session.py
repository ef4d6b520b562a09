"""Who is signed in to the portal, and the pages that need someone to be.

The signed cookie (Flask's session, signed with ``ENTITLEMENTS_SECRET_KEY``) carries the session's
secret and the CSRF token; the session itself lives in the database (``entitlements.sign_in``),
read on every page together with the person's directory entry, so that Sign out, a timeout or a
user removed from the directory ends it at once, in every process.
"""

from __future__ import annotations

from functools import wraps
from typing import Any, Callable, TypeVar
from urllib.parse import urlsplit

from flask import g, redirect, request, session, url_for

from web.context import services

SESSION_KEY = "sid"
NEXT_KEY = "next"

F = TypeVar("F", bound=Callable[..., Any])


def load_person() -> None:
    """``before_request`` of the portal: ``g.person`` is the signed-in person's directory entry, or None."""
    g.person = None
    secret = session.get(SESSION_KEY)
    if not secret:
        return
    found = services().sign_in.session(secret)
    person = services().read_models.user(found.user_id) if found is not None else None
    if person is None:  # ended, lapsed, or its user left the directory
        session.pop(SESSION_KEY, None)
        return
    g.person = person


def person() -> dict[str, Any] | None:
    return g.get("person")


def person_id() -> str:
    return g.person["id"]


def sign_in_required(view: F) -> F:
    """Sends someone not signed in to the sign-in page, and back here afterwards."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any):
        if person() is None:
            if request.method == "GET":
                session[NEXT_KEY] = request.full_path.rstrip("?")
            return redirect(url_for("portal.sign_in"))
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def begin(user_id: str, *, method: str) -> str:
    """Opens a session for ``user_id`` (the cookie's old contents dropped: a new CSRF token too);
    answers where to go next."""
    target = safe_next(session.get(NEXT_KEY))
    old = session.get(SESSION_KEY)
    if old:
        services().sign_in.end_session(old)
    session.clear()
    session[SESSION_KEY] = services().sign_in.start_session(user_id, method=method)
    session.permanent = True
    return target


def end() -> None:
    secret = session.get(SESSION_KEY)
    if secret:
        services().sign_in.end_session(secret)
    session.clear()


def safe_next(target: str | None) -> str:
    """A path of this site to return to after sign-in (never another site's address)."""
    if (not target or not target.startswith("/") or target.startswith("//") or "\\" in target
            or any(ord(character) < 0x20 or ord(character) == 0x7F for character in target)):  # browsers drop tabs and newlines
        return url_for("portal.home")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return url_for("portal.home")
    return target

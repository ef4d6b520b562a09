"""Who is calling (``Authorization: Bearer TOKEN``) and what they may read.

Every endpoint needs a token except those marked :func:`public` (liveness, readiness) and the
OpenAPI document. Writes are authorized by the domain (``NotAnApprover``, ``NotTheRequestor``...);
this module decides only what the read models let a user see.
"""

from __future__ import annotations

from typing import Any, TypeVar

from flask import Flask, current_app, g, request

from entitlements.tokens import EXPIRED, REVOKED
from web.context import services, web_context
from web.errors import ApiError

ADMIN = "admin"
AUDITOR = "auditor"
DOC_BLUEPRINT = "api-docs"  # flask-smorest's blueprint serving openapi.json
PORTAL_BLUEPRINT = "portal"  # pages for people: signed in by a session cookie (web.portal.session)

T = TypeVar("T")


def public(view_class: T) -> T:
    """Marks a MethodView as answering without a token."""
    view_class.public = True  # type: ignore[attr-defined]
    return view_class


def unauthorized(message: str, **details: Any) -> ApiError:
    return ApiError(401, "unauthorized", message, details, headers={"WWW-Authenticate": 'Bearer realm="entitlements"'})


def forbidden(message: str, **details: Any) -> ApiError:
    return ApiError(403, "forbidden", message, details)


def _is_public() -> bool:
    if request.routing_exception is not None:  # unknown route or method: answered as such
        return True
    if request.method == "OPTIONS":  # Flask's automatic answer: the allowed methods, nothing else
        return True
    if request.blueprint in (DOC_BLUEPRINT, PORTAL_BLUEPRINT):
        return True
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(getattr(getattr(view, "view_class", None), "public", False) or getattr(view, "public", False))


def authenticate() -> None:
    """``before_request``: puts the caller's directory entry in ``g.user`` or answers 401.

    The token's row is read on every request (one primary-key read), so a token revoked or expired
    (in the application's time) is refused at once, whichever process revoked it; only the
    directory entry of its user is remembered for a few seconds (``callers``)."""
    if _is_public():
        return
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthorized("send an API token: Authorization: Bearer TOKEN")
    found = services().tokens.find(token)
    if found is None:
        raise unauthorized("this API token is not valid")
    if found.revoked_at is not None:
        revoked_at = found.revoked_at.isoformat()
        raise unauthorized(
            f"this API token ({found.id}) was revoked at {revoked_at}; ask for a new one",
            reason=REVOKED, token_id=found.id, revoked_at=revoked_at,
        )
    if found.expires_at is not None and found.state(services().app.clock.now()) == EXPIRED:
        expires_at = found.expires_at.isoformat()
        raise unauthorized(
            f"this API token ({found.id}) expired at {expires_at}; ask for a new one",
            reason=EXPIRED, token_id=found.id, expired_at=expires_at,
        )
    callers = web_context().callers
    user = callers.get(found.user_id)
    if user is None:
        user = services().read_models.user(found.user_id)
        if user is None:
            raise unauthorized(f"the user of this API token ({found.user_id}) is not in the directory")
        callers.remember(found.user_id, user)
    g.user = user


def init_app(app: Flask) -> None:
    app.before_request(authenticate)


def current_user() -> dict[str, Any]:
    return g.user


def current_user_id() -> str:
    return g.user["id"]


def is_auditor(user: dict[str, Any]) -> bool:
    return AUDITOR in (user.get("roles") or [])


def may_read_request(user: dict[str, Any], details: dict[str, Any]) -> bool:
    """The requestor, the target, any approver or alternate approver of any stage, an auditor."""
    user_id = user["id"]
    if user_id in (details["requestor_id"], details["target_user_id"]) or is_auditor(user):
        return True
    return any(
        user_id in stage["approvers"] or user_id in stage["alternate_approvers"] for stage in details["stages"]
    )

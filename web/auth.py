"""Who is calling (``Authorization: Bearer TOKEN``) and what they may read.

Every endpoint needs a token except those marked :func:`public` (liveness, readiness) and the
OpenAPI document. Writes are authorized by the domain (``NotAnApprover``, ``NotTheRequestor``...);
this module decides only what the read models let a user see.
"""

from __future__ import annotations

from typing import Any, TypeVar

from flask import Flask, current_app, g, request

from entitlements.tokens import token_hash
from web.context import services, web_context
from web.errors import ApiError

ADMIN = "admin"
AUDITOR = "auditor"
DOC_BLUEPRINT = "api-docs"  # flask-smorest's blueprint serving openapi.json

T = TypeVar("T")


def public(view_class: T) -> T:
    """Marks a MethodView as answering without a token."""
    view_class.public = True  # type: ignore[attr-defined]
    return view_class


def unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": 'Bearer realm="entitlements"'})


def forbidden(message: str, **details: Any) -> ApiError:
    return ApiError(403, "forbidden", message, details)


def _is_public() -> bool:
    if request.routing_exception is not None:  # unknown route or method: answered as such
        return True
    if request.method == "OPTIONS":  # Flask's automatic answer: the allowed methods, nothing else
        return True
    if request.blueprint == DOC_BLUEPRINT:
        return True
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(getattr(getattr(view, "view_class", None), "public", False) or getattr(view, "public", False))


def authenticate() -> None:
    """``before_request``: puts the caller's directory entry in ``g.user`` or answers 401."""
    if _is_public():
        return
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthorized("send an API token: Authorization: Bearer TOKEN")
    key = token_hash(token)
    callers = web_context().callers
    user = callers.get(key)
    if user is None:
        user_id = services().tokens.user_for(token)
        if user_id is None:
            raise unauthorized("this API token is not valid")
        user = services().read_models.user(user_id)
        if user is None:
            raise unauthorized(f"the user of this API token ({user_id}) is not in the directory")
        callers.remember(key, user)
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

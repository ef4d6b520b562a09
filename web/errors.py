"""Every error the HTTP API answers, in one place: ``{"error": {"code", "message", "details"}}``.

Domain errors map to a status by their kind (not found 404, forbidden 403, conflict 409, rule
violated 422, invalid input 400); webargs' validation errors become 400 naming each bad field;
a body that is not JSON is 400 ``malformed_json``; a body nested deeper than
``MAX_JSON_DEPTH`` is 400 ``json_too_deep``; a body over ``MAX_BODY_BYTES`` is 413
``request_too_large`` (``details.max_bytes``); unknown routes and methods are JSON 404/405;
anything unexpected is a 500 with a generic message (the exception goes to the log only).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable, Mapping

import marshmallow as ma
from flask import Flask, has_request_context, request
from werkzeug.exceptions import HTTPException

from domain import errors as domain
from domain import limits
from projections.paging import InvalidCursor
from web.api.fields import TooDeep

log = logging.getLogger(__name__)

# The kinds of domain error, most specific first; a DomainError of no kind is a broken rule.
DOMAIN_STATUSES: tuple[tuple[type[domain.DomainError], int], ...] = (
    (domain.NotFound, 404),
    (domain.Forbidden, 403),
    (domain.Conflict, 409),
    (domain.RuleViolation, 422),
    (domain.InvalidInput, 400),
)
DEFAULT_DOMAIN_STATUS = 422

# Codes for the HTTP errors raised by Flask/werkzeug themselves (no route, wrong method...).
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    500: "internal_error",
    503: "unavailable",
}
INTERNAL_MESSAGE = "an unexpected error occurred; it was logged"


class ApiError(Exception):
    """An error the web layer answers itself (authentication, authorization, consistency...)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = dict(details or {})
        self.headers = dict(headers or {})


class ErrorBodySchema(ma.Schema):
    code = ma.fields.String(required=True, metadata={"description": "stable, machine-readable: `already_decided`"})
    message = ma.fields.String(required=True, metadata={"description": "for people"})
    details = ma.fields.Dict(
        required=True,
        metadata={"description": "what the code is about, e.g. `decided_by` for `already_decided`, `fields` for `bad_request`"},
    )


class ErrorSchema(ma.Schema):
    """Every error response."""

    error = ma.fields.Nested(ErrorBodySchema, required=True)


def error_body(code: str, message: str, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    # details come from the domain and from validators: make sure they are plain JSON
    plain = json.loads(json.dumps(dict(details or {}), default=str))
    return {"error": {"code": code, "message": message, "details": plain}}


def _response(status: int, code: str, message: str, details=None, headers=None):
    return error_body(code, message, details), status, dict(headers or {})


# --- handlers ----------------------------------------------------------------------------------


def handle_api_error(error: ApiError):
    return _response(error.status, error.code, error.message, error.details, error.headers)


def handle_domain_error(error: domain.DomainError):
    details = error.details
    if isinstance(error, domain.InvalidInput) and isinstance(details.get("field"), str):
        # named the way bad_request names fields, so clients read one shape for both
        details = {**details, "fields": {details["field"]: [error.message]}}
    return _response(status_of(error), error.code, error.message, details)


def status_of(error: domain.DomainError) -> int:
    for kind, status in DOMAIN_STATUSES:
        if isinstance(error, kind):
            return status
    return DEFAULT_DOMAIN_STATUS


def handle_invalid_cursor(error: InvalidCursor):
    return _response(400, "invalid_cursor", str(error), {"fields": {"cursor": [str(error)]}})


def handle_http_exception(error: HTTPException):
    """Werkzeug's errors (routing, methods) and webargs' ``abort`` (validation, bad JSON)."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    headers.update(data.get("headers") or {})
    if status >= 500:
        original = getattr(error, "original_exception", None)
        if original is not None:
            log.error("unhandled error while answering a request", exc_info=original)
        return _response(status, HTTP_CODES.get(status, "internal_error"), INTERNAL_MESSAGE)
    if "messages" in data:
        exc = getattr(error, "exc", None)
        if isinstance(exc, (json.JSONDecodeError, UnicodeDecodeError)):
            return _response(400, "malformed_json", "the request body is not valid JSON", {"reason": str(exc)}, headers)
        fields = flatten_messages(data["messages"])
        names = ", ".join(sorted(fields)) or "the request"
        return _response(400, "bad_request", f"invalid input: {names}", {"fields": fields}, headers)
    if "code" in data and "message" in data:  # our own abort(...) calls
        return _response(status, data["code"], data["message"], data.get("details"), headers)
    if status == 413:
        most = (request.max_content_length if has_request_context() else None) or limits.MAX_BODY_BYTES
        return _response(
            413,
            "request_too_large",
            f"the request body is larger than {most} bytes, the most accepted",
            {"max_bytes": most},
            headers,
        )
    message = error.description or error.name
    details: dict[str, Any] = {}
    routing = has_request_context() and request.routing_exception is error
    if routing and status == 404:
        message = f"no such endpoint: {request.method} {request.path}"
    if routing and status == 405:
        details["allowed"] = sorted(getattr(error, "valid_methods", None) or [])
        message = f"{request.path} does not answer {request.method}; it answers {', '.join(details['allowed'])}"
    return _response(status, HTTP_CODES.get(status, error.name.lower().replace(" ", "_")), message, details, headers)


def flatten_messages(messages: Mapping[str, Any]) -> dict[str, Any]:
    """webargs keys messages by location (``{"json": {"decision": [...]}}``); clients want fields."""
    fields: dict[str, Any] = {}
    for location, problems in messages.items():
        if isinstance(problems, Mapping):
            fields.update(problems)
        else:
            fields[location] = problems
    return fields


def handle_too_deep(error: TooDeep):
    return _response(
        400, "json_too_deep", str(error), {"max_depth": limits.MAX_JSON_DEPTH, "depth": error.depth}
    )


def handle_unexpected(error: Exception):
    log.exception("unhandled error while answering a request", exc_info=error)
    return _response(500, "internal_error", INTERNAL_MESSAGE)


ErrorPage = Callable[[int, str], Any]  # (status, message for people) -> a response


def register_error_handlers(app: Flask, *, page: ErrorPage | None = None, is_api: Callable[[str], bool] = lambda path: True) -> None:
    """Installs every handler; call it after flask-smorest's ``Api`` so that ours win.

    A request whose path ``is_api`` is not is answered by ``page`` (an HTML page for people:
    the portal's) instead of JSON, with the same status; an unexpected error is still logged."""

    def handler(answer: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def handle(error: Any) -> Any:
            response = answer(error)
            if page is None or not has_request_context() or is_api(request.path):
                return response
            body, status = response[0], response[1]
            return page(status, _message_for_people(status, body["error"]["message"]))

        return handle

    app.register_error_handler(ApiError, handler(handle_api_error))
    app.register_error_handler(domain.DomainError, handler(handle_domain_error))
    app.register_error_handler(InvalidCursor, handler(handle_invalid_cursor))
    app.register_error_handler(TooDeep, handler(handle_too_deep))
    app.register_error_handler(HTTPException, handler(handle_http_exception))
    app.register_error_handler(Exception, handler(handle_unexpected))


def _message_for_people(status: int, message: str) -> str:
    if status == 404 and message.startswith("no such endpoint"):
        return "There is no page at this address."
    if status >= 500:
        return "Something went wrong on our side. It was logged; please try again in a moment."
    return message

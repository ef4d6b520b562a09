"""flask-smorest's Blueprint, with a request parser that answers 400 (not webargs' 422) for
malformed input: in this API, 422 means "well-formed but against the rules"."""

from __future__ import annotations

import typing
from http import HTTPStatus

import flask
import flask_smorest
from webargs import core
from webargs.flaskparser import FlaskParser, abort


class Parser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400

    def _raw_load_json(self, req: flask.Request) -> typing.Any:
        """A body that is not declared as JSON is refused rather than read as no body at all."""
        if not core.is_json(req.mimetype):
            if req.get_data(cache=True):
                abort(
                    400,
                    code="malformed_json",
                    message="the request body must be JSON, sent with Content-Type: application/json",
                    details={"content_type": req.mimetype or None},
                )
            return core.missing
        return core.parse_json(req.get_data(cache=True))


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = Parser()

    def errors(self, *statuses: int):
        """Documents the error statuses an operation answers (each with the error schema)."""

        def decorator(func):
            for status in reversed(statuses):
                func = self.alt_response(status, response=HTTPStatus(status).name)(func)
            return func

        return decorator

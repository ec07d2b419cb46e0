"""The JSON API under /api/v1: blueprints, the OpenAPI document and one error shape."""

from __future__ import annotations

from typing import Any

import flask_smorest
from apispec import BasePlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from flask import Request
from flask_smorest import abort
from flask_smorest.error_handler import ErrorSchema as SmorestErrorSchema
from marshmallow import Schema, fields
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import HTTPException

from connector.requires_one_of import RequiresOneOf
from connector.web.json_input import (
    JSONInputError,
    invalid_request_message,
    load_json,
    reject,
    text_problem,
)

API_PREFIX = "/api/v1"


class ErrorSchema(SmorestErrorSchema):
    """The one error shape, with the fields some errors add for a client to act on."""

    reason = fields.String(
        metadata={
            "enum": ["consent_required", "send_unconfirmed", "sent_not_logged"],
            "description": "What a client can act on: sign in again, look in Sent first, "
            "or (sent, not logged) never send it again",
        }
    )
    sign_in_url = fields.String(
        metadata={"description": "With consent_required: where the user allows it"}
    )


class RequiresOneOfPlugin(BasePlugin):
    """Documents RequiresOneOf, which marshmallow's fields cannot express."""

    def schema_helper(self, name: str, definition: dict, **kwargs: Any) -> dict | None:
        schema = kwargs.get("schema")
        cls = resolve_schema_cls(schema) if schema is not None else None
        if not (isinstance(cls, type) and issubclass(cls, RequiresOneOf)):
            return None
        if not cls.required_one_of:
            return None
        return {"anyOf": [{"required": [cls._data_key(n)]} for n in cls.required_one_of]}


def nullable_nested(_converter: Any, field: fields.Field, ret: dict, **_kwargs: Any) -> dict:
    """OpenAPI 3.0 has no null type, so apispec writes a nullable nested object as
    anyOf [{type: object, nullable: true}, {$ref}]: its first branch takes ANY object, so
    the document would accept what validation refuses. Narrow that branch to null alone."""
    for branch in ret.get("anyOf", []):
        if branch == {"type": "object", "nullable": True}:
            branch["enum"] = [None]
    return {}


class Parser(FlaskParser):
    # Input that does not fit a schema is a client error like any other 400.
    DEFAULT_VALIDATION_STATUS = 400

    def _raw_load_json(self, req: Request) -> Any:
        # The app's rules for JSON bodies (depth, text), not webargs' plain json.loads.
        if not is_json_request(req):
            return core.missing
        return load_json(req.get_data(cache=True))

    def _handle_invalid_json_error(
        self, error: Exception, req: Request, *args: Any, **kwargs: Any
    ) -> Any:
        if isinstance(error, JSONInputError):
            reject(error)
        return super()._handle_invalid_json_error(error, req, *args, **kwargs)

    def load_querystring(self, req: Request, schema: Schema) -> Any:
        """The query string, by the rule JSON bodies follow: text that cannot be stored is a 400.

        (Werkzeug decodes %00 to a NUL, which PostgreSQL refuses in a query.)
        """
        errors: dict[str, list[str]] = {}
        for name, value in req.args.items(multi=True):
            problem = text_problem(name) or text_problem(value)
            if problem:
                errors.setdefault(name.replace("\x00", "\ufffd"), []).append(problem)
        if errors:
            abort(400, errors={"query": errors})
        return super().load_querystring(req, schema)

    def load_json(self, req: Request, schema: Schema) -> Any:
        """A JSON body: every operation that takes one documents it as required."""
        data = super().load_json(req, schema)
        if data is core.missing:
            abort(
                400,
                message="The request needs a JSON body (Content-Type: application/json).",
                errors={"json": ["missing"]},
            )
        return data


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = Parser()


class Api(flask_smorest.Api):
    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException) -> Any:
        """Every error, API or not, is `{code, status, message[, errors]}`."""
        payload, code, headers = super().handle_http_exception(error)
        if "message" not in payload:
            if code >= 500:
                # Never leak what went wrong inside; the log has it.
                payload["message"] = "Something went wrong on our side; it has been logged."
            elif code == 400 and "errors" in payload:
                payload["message"] = invalid_request_message(payload["errors"])
            else:
                payload["message"] = error.description or error.name
        return payload, code, headers

"""The JSON API under /api/v1: blueprints, the OpenAPI document and one error shape."""

from __future__ import annotations

import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, NoReturn, TypeVar, cast

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

from connector.records.models import RecordType
from connector.requires_one_of import RequiresOneOf
from connector.web.json_input import (
    JSONInputError,
    invalid_request_message,
    load_json,
    reject,
    text_problem,
)

API_PREFIX = "/api/v1"

# A view function or MethodView class, which flask-smorest's decorators hand back wrapped.
F = TypeVar("F", bound=Callable[..., Any])


# flask-smorest ships no types (pyproject.toml, tool.mypy): its classes are Any to mypy.
class ErrorSchema(SmorestErrorSchema):  # type: ignore[misc]
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

    def schema_helper(
        self, name: str, definition: dict[str, Any], **kwargs: Any
    ) -> dict[str, Any] | None:
        schema = kwargs.get("schema")
        cls = resolve_schema_cls(schema) if schema is not None else None
        if not (isinstance(cls, type) and issubclass(cls, RequiresOneOf)):
            return None
        if not cls.required_one_of:
            return None
        return {"anyOf": [{"required": [cls._data_key(n)]} for n in cls.required_one_of]}


def nullable_nested(
    _converter: Any, field: fields.Field[Any], ret: dict[str, Any], **_kwargs: Any
) -> dict[str, Any]:
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
        self,
        error: json.JSONDecodeError | UnicodeDecodeError,
        req: Request,
        *args: Any,
        **kwargs: Any,
    ) -> NoReturn:
        if isinstance(error, JSONInputError):
            reject(error)
        super()._handle_invalid_json_error(error, req, *args, **kwargs)

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


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    """flask-smorest's Blueprint, with types for the decorators the API uses.

    Each decorator hands back the view wrapped (arguments injected, the answer serialized),
    but to mypy it is the view as written: only Flask calls it, and so its body and its
    signature stay checked.
    """

    ARGUMENTS_PARSER = Parser()

    def route(
        self,
        rule: str,
        *,
        parameters: list[Any] | None = None,
        tags: list[str] | None = None,
        **options: Any,
    ) -> Callable[[F], F]:
        # cast: flask-smorest's decorators are untyped (Any).
        return cast(
            Callable[[F], F], super().route(rule, parameters=parameters, tags=tags, **options)
        )

    def arguments(
        self,
        schema: type[Schema] | Schema,
        *,
        location: str = "json",
        content_type: str | None = None,
        required: bool = True,
        description: str | None = None,
        example: Any = None,
        examples: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Callable[[F], F]:
        return cast(
            Callable[[F], F],
            super().arguments(
                schema,
                location=location,
                content_type=content_type,
                required=required,
                description=description,
                example=example,
                examples=examples,
                **kwargs,
            ),
        )

    def response(
        self,
        status_code: int | str | HTTPStatus,
        schema: type[Schema] | Schema | str | dict[str, Any] | None = None,
        *,
        content_type: str | None = None,
        description: str | None = None,
        example: Any = None,
        examples: dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
    ) -> Callable[[F], F]:
        return cast(
            Callable[[F], F],
            super().response(
                status_code,
                schema,
                content_type=content_type,
                description=description,
                example=example,
                examples=examples,
                headers=headers,
            ),
        )

    def alt_response(
        self,
        status_code: int | str | HTTPStatus,
        response: str | None = None,
        *,
        schema: type[Schema] | Schema | str | dict[str, Any] | None = None,
        content_type: str | None = None,
        description: str | None = None,
        example: Any = None,
        examples: dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
        success: bool = False,
    ) -> Callable[[F], F]:
        return cast(
            Callable[[F], F],
            super().alt_response(
                status_code,
                response,
                schema=schema,
                content_type=content_type,
                description=description,
                example=example,
                examples=examples,
                headers=headers,
                success=success,
            ),
        )

    @staticmethod
    def doc(**kwargs: Any) -> Callable[[F], F]:
        return cast(Callable[[F], F], flask_smorest.Blueprint.doc(**kwargs))


class Api(flask_smorest.Api):  # type: ignore[misc]
    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(
        self, error: HTTPException
    ) -> tuple[dict[str, Any], int, dict[str, Any]]:
        """Every error, API or not, is `{code, status, message[, errors]}`."""
        payload: dict[str, Any]
        code: int
        headers: dict[str, Any]
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


# The records' collections in the API's paths: /api/v1/{plural}/{id}/followers, /messages.
RECORD_PLURALS = {
    RecordType.CONTACT: "contacts",
    RecordType.COMPANY: "companies",
    RecordType.LEAD: "leads",
    RecordType.TICKET: "tickets",
}

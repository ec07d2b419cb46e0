"""The JSON API under /api/v1: blueprints, the OpenAPI document and one error shape."""

from __future__ import annotations

from typing import Any

import flask_smorest
from flask import Flask
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException

API_PREFIX = "/api/v1"


class Parser(FlaskParser):
    # Input that does not fit a schema is a client error like any other 400.
    DEFAULT_VALIDATION_STATUS = 400


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = Parser()


class Api(flask_smorest.Api):
    def handle_http_exception(self, error: HTTPException) -> Any:
        """Every error, API or not, is `{code, status, message[, errors]}`."""
        payload, code, headers = super().handle_http_exception(error)
        if "message" not in payload:
            if code >= 500:
                # Never leak what went wrong inside; the log has it.
                payload["message"] = "Something went wrong on our side; it has been logged."
            elif code == 400 and "errors" in payload:
                payload["message"] = "The request is not valid: see errors."
            else:
                payload["message"] = error.description or error.name
        return payload, code, headers


def init_app(app: Flask) -> None:
    app.config.update(
        API_TITLE="Connector API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=API_PREFIX,
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "info": {
                "description": "Customer records for the Gmail and Outlook add-ins. Every "
                "error is a JSON object {code, status, message, errors?}."
            },
            "security": [{"apiKey": []}],
            "servers": [{"url": app.config["PUBLIC_URL"]}],
        },
    )
    api = Api(app)
    api.spec.components.security_scheme(
        "apiKey", {"type": "http", "scheme": "bearer", "description": "A connector API key"}
    )
    from connector.activities.views import blp as activities_blp
    from connector.email_templates.views import blp as templates_blp
    from connector.lookup.views import blp as lookup_blp
    from connector.outlook.views import blp as outlook_blp
    from connector.records.views import blp as records_blp

    for blueprint in (lookup_blp, records_blp, activities_blp, templates_blp, outlook_blp):
        api.register_blueprint(blueprint, url_prefix=API_PREFIX)
    app.extensions["connector.api"] = api

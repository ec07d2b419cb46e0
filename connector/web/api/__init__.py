"""The JSON API under /api/v1: one module per resource, each a Blueprint of its own,
registered here with the OpenAPI document (the shared parts are in .base)."""

from __future__ import annotations

from flask import Flask

from connector.web.api.activities import blp as activities_blp
from connector.web.api.aliases import blp as aliases_blp
from connector.web.api.base import API_PREFIX, Api, RequiresOneOfPlugin, nullable_nested
from connector.web.api.followers import blp as followers_blp
from connector.web.api.lookup import blp as lookup_blp
from connector.web.api.messages import blp as messages_blp
from connector.web.api.outlook import blp as outlook_blp
from connector.web.api.records import blp as records_blp
from connector.web.api.templates import blp as templates_blp


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
    api = Api(app, spec_kwargs={"extra_plugins": [RequiresOneOfPlugin()]})
    api.ma_plugin.converter.add_attribute_function(nullable_nested)
    api.spec.components.security_scheme(
        "apiKey", {"type": "http", "scheme": "bearer", "description": "A connector API key"}
    )
    for blueprint in (
        lookup_blp,
        records_blp,
        activities_blp,
        templates_blp,
        outlook_blp,
        aliases_blp,
        messages_blp,
        followers_blp,
    ):
        api.register_blueprint(blueprint, url_prefix=API_PREFIX)
    app.extensions["connector.api"] = api

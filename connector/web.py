"""Glue between views and services: the service context of a request, and service errors as JSON."""

from __future__ import annotations

from flask import Flask, current_app, jsonify
from flask.typing import ResponseReturnValue

from connector.auth import current_user
from connector.context import Ctx, Settings
from connector.db import get_session
from connector.errors import ServiceError
from connector.json_input import Request
from connector.lookup.service import track_writes
from connector.records.addresses import FreeMailDomains
from connector.store import get_store


def service_ctx() -> Ctx:
    return Ctx(
        session=get_session(),
        user=current_user(),
        store=get_store(current_app),
        settings=current_app.extensions["connector.settings"],
    )


def _service_error(error: ServiceError) -> ResponseReturnValue:
    get_session().rollback()
    body: dict[str, object] = {
        "code": error.status_code,
        "status": _STATUS_NAMES.get(error.status_code, "Error"),
        "message": error.message,
    }
    if error.errors:
        body["errors"] = error.errors
    body.update({k: v for k, v in error.extra.items() if k not in body})
    return jsonify(body), error.status_code


_STATUS_NAMES = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    413: "Content Too Large",
    502: "Bad Gateway",
}


def init_app(app: Flask) -> None:
    # Every JSON body, API or add-on, is loaded by the same rules (connector.json_input).
    app.request_class = Request
    extra = app.config["EXTRA_FREE_MAIL_DOMAINS"]
    app.extensions["connector.settings"] = Settings(
        free_mail=FreeMailDomains(frozenset(d.strip().lower() for d in extra.split(",") if d)),
        attachment_cap_bytes=app.config["ATTACHMENT_CAP_BYTES"],
        lookup_cache_seconds=app.config["LOOKUP_CACHE_SECONDS"],
    )
    track_writes(app.extensions["connector.sessionmaker"], get_store(app))
    app.register_error_handler(ServiceError, _service_error)

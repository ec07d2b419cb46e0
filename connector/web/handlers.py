"""Glue between views and services: the service context of a request, and service errors as JSON."""

from __future__ import annotations

import logging

from flask import Flask, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import ServiceUnavailable

from connector.addresses import FreeMailDomains
from connector.db import get_session, is_outage, roll_back
from connector.errors import ServiceError
from connector.lookup.service import track_writes
from connector.orgs.context import Ctx, Settings
from connector.store import StoreUnavailable, get_store
from connector.web.auth import current_user
from connector.web.json_input import Request

log = logging.getLogger(__name__)

# How long a client should wait before trying again after an outage.
RETRY_AFTER_SECONDS = 5


def service_ctx() -> Ctx:
    return Ctx(
        session=get_session(),
        user=current_user(),
        store=get_store(current_app),
        settings=current_app.extensions["connector.settings"],
    )


def _service_error(error: ServiceError) -> ResponseReturnValue:
    _roll_back()
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
    412: "Precondition Failed",
    413: "Content Too Large",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def _unavailable(what: str) -> ResponseReturnValue:
    """A 503 handled as any HTTP error is: the JSON error shape for the API and the add-ins,
    an HTML page for a browser, with Retry-After on both."""
    message = f"The {what} is unavailable right now; nothing was saved. Try again in a few seconds."
    error = ServiceUnavailable(description=message, retry_after=RETRY_AFTER_SECONDS)
    # What flask-smorest's JSON handler reads (webargs' abort sets the same); werkzeug's
    # HTTPException declares no such attribute.
    error.data = {  # type: ignore[attr-defined]
        "message": message,
        "headers": {"Retry-After": str(RETRY_AFTER_SECONDS)},
    }
    return current_app.handle_http_exception(error)


def _database_error(error: SQLAlchemyError) -> ResponseReturnValue:
    if not is_outage(error):
        raise error  # a bug: the 500 handler logs it
    log.warning("Database unavailable: %s", getattr(error, "orig", None) or error)
    _roll_back()
    return _unavailable("database")


def _store_error(error: StoreUnavailable) -> ResponseReturnValue:
    log.warning("Shared store unavailable: %s", error)
    _roll_back()
    return _unavailable("shared store")


def _roll_back() -> None:
    # Nothing of the request is kept.
    roll_back(get_session())


def init_app(app: Flask) -> None:
    # Every JSON body, API or add-on, is loaded by the same rules (connector.web.json_input).
    app.request_class = Request
    extra = app.config["EXTRA_FREE_MAIL_DOMAINS"]
    app.extensions["connector.settings"] = Settings(
        free_mail=FreeMailDomains(frozenset(d.strip().lower() for d in extra.split(",") if d)),
        attachment_cap_bytes=app.config["ATTACHMENT_CAP_BYTES"],
        lookup_cache_seconds=app.config["LOOKUP_CACHE_SECONDS"],
    )
    track_writes(
        app.extensions["connector.sessionmaker"], get_store(app), app.extensions["connector.engine"]
    )
    app.register_error_handler(ServiceError, _service_error)
    # Outages are a 503 with Retry-After, in the one error shape, never a 500.
    app.register_error_handler(DBAPIError, _database_error)
    # No connection free for the whole pool timeout: the database is slow or hung.
    app.register_error_handler(PoolTimeout, _database_error)
    app.register_error_handler(StoreUnavailable, _store_error)

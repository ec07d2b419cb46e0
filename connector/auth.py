"""Who is calling the JSON API: a per-user API key sent as a Bearer token."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Flask, current_app, g, request
from flask_cors import CORS
from flask_smorest import abort

from connector.db import get_session
from connector.orgs import service
from connector.orgs.models import User
from connector.outlook.entra import EntraTokenValidator, InvalidEntraToken, JwksCache

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def current_user() -> User:
    return cast(User, g.current_user)


def _entra_user(token: str) -> User | None:
    """The user of an Entra ID access token, if their organization is bound to its tenant."""
    validator: EntraTokenValidator = current_app.extensions["connector.entra_validator"]
    try:
        identity = validator.validate(token)
    except InvalidEntraToken as exc:
        log.info("Entra token refused: %s", exc)
        return None
    user = service.find_user(get_session(), identity.email)
    # A tenant's tokens reach only the organization bound to it: any tenant can
    # issue a token naming any address, so an unbound organization takes none.
    if user is None or user.organization.entra_tenant_id != identity.tenant_id:
        log.info(
            "Entra token for %s from tenant %s has no user here", identity.email, identity.tenant_id
        )
        return None
    return user


def authenticate_request() -> User | None:
    token = bearer_token()
    if not token:
        return None
    if token.startswith(service.KEY_PREFIX):
        return service.authenticate(get_session(), token)
    return _entra_user(token)


def login_required(view: F) -> F:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        user = authenticate_request()
        if user is None:
            abort(
                401,
                message="A valid API key or Entra ID access token is required: "
                "send it as 'Authorization: Bearer <token>'.",
                headers={"WWW-Authenticate": 'Bearer realm="connector"'},
            )
        g.current_user = user
        return view(*args, **kwargs)

    return cast(F, wrapped)


def init_app(app: Flask) -> None:
    app.extensions["connector.entra_validator"] = EntraTokenValidator(
        JwksCache(app.config["MS_JWKS_URL"]),
        client_id=app.config["MS_CLIENT_ID"],
        scope=app.config["MS_API_SCOPE"],
    )
    # The Outlook task pane calls the API from its own origin: allow exactly the
    # configured ones, with the headers it sends, and answer preflight requests.
    CORS(
        app,
        resources={r"/api/*": {"origins": app.config["CORS_ORIGINS"]}},
        allow_headers=["Authorization", "Content-Type"],
        methods=["GET", "POST", "PATCH", "OPTIONS"],
        max_age=600,
    )

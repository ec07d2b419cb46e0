"""Who is calling the JSON API: a per-user API key sent as a Bearer token.

Wrong tokens are rate limited per client address (FAILURE_LIMIT). Only failures are
counted, and a valid token is always let in: offices share one address, and one person's
stale key must not lock out their colleagues. Keys are 256-bit random strings, so the limit
is not what stops guessing; it answers a flood of wrong tokens with 429s that tell a
misconfigured client (or a script) to back off, and makes the flood stand out. Each wrong
token is still checked (a lookup, or Entra's validation) before it is counted.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Flask, current_app, g, request
from flask_cors import CORS
from flask_smorest import abort
from limits import parse
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from connector.db import get_session
from connector.orgs import service
from connector.orgs.models import User
from connector.providers.microsoft.entra import EntraTokenValidator, InvalidEntraToken, JwksCache

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

# Wrong API keys or Entra tokens from one client address; the next is answered 429.
FAILURE_LIMIT = parse("20 per minute")
_FAILURES = "wrong-bearer-token"


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
    if not user.active:
        log.info("Entra token for %s refused: the user is deactivated", identity.email)
        return None
    return user


def authenticate_request() -> User | None:
    token = bearer_token()
    if not token:
        return None
    if token.startswith(service.KEY_PREFIX):
        session = get_session()
        user = service.authenticate(session, token)
        if session.dirty:
            # last_used_at, at most once a minute per key: committed now, before the view
            # runs, so that a view that fails (and rolls back) or only reads still keeps it.
            session.commit()
        return user
    return _entra_user(token)


def _count_failure() -> None:
    """Charge a wrong token to the client's address; past FAILURE_LIMIT, answer 429."""
    strategy: MovingWindowRateLimiter = current_app.extensions["connector.auth_limiter"]
    # The client as ProxyFix gives it when proxies are trusted, else the peer.
    address = request.remote_addr or "unknown"
    try:
        if strategy.hit(FAILURE_LIMIT, _FAILURES, address):
            return
        reset_at, _remaining = strategy.get_window_stats(FAILURE_LIMIT, _FAILURES, address)
    except StorageError as exc:
        # The store is down: the caller still gets their 401, uncounted.
        log.warning("Could not count a wrong token from %s: %s", address, exc)
        return
    retry_after = max(1, math.ceil(reset_at - time.time()))
    log.info("Wrong tokens from %s: past %s, answered 429", address, FAILURE_LIMIT)
    abort(
        429,
        message=f"Too many wrong API keys or tokens from this address: try again in "
        f"{retry_after} s.",
        headers={"Retry-After": str(retry_after)},
    )


def login_required(view: F) -> F:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        user = authenticate_request()
        if user is None:
            if bearer_token():
                _count_failure()
            abort(
                401,
                message="A valid API key or Entra ID access token is required: "
                "send it as 'Authorization: Bearer <token>'.",
                headers={"WWW-Authenticate": 'Bearer realm="connector"'},
            )
        g.current_user = user
        return view(*args, **kwargs)

    return cast(F, wrapped)


def _failure_limiter(app: Flask) -> MovingWindowRateLimiter:
    """A moving window of wrong tokens per address, kept by `limits` (flask-limiter's storage
    and strategies; flask-limiter itself would add three hooks to every request for limits
    we do not have): in Redis when configured (shared by all workers), else in this
    process's memory (one worker, as `serve` then runs)."""
    redis_url = app.config["REDIS_URL"]
    if redis_url:
        storage = storage_from_string(
            redis_url,
            key_prefix=f"{app.config['REDIS_PREFIX']}limits",
            socket_connect_timeout=2,
            socket_timeout=2,
            wrap_exceptions=True,
        )
    else:
        storage = storage_from_string("memory://")
    return MovingWindowRateLimiter(storage)


def init_app(app: Flask) -> None:
    app.extensions["connector.auth_limiter"] = _failure_limiter(app)
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

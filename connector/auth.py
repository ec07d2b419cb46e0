"""Who is calling the JSON API: a per-user API key sent as a Bearer token."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import g, request
from flask_smorest import abort

from connector.db import get_session
from connector.orgs import service
from connector.orgs.models import User

F = TypeVar("F", bound=Callable[..., Any])


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def current_user() -> User:
    return cast(User, g.current_user)


def login_required(view: F) -> F:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        token = bearer_token()
        user = service.authenticate(get_session(), token) if token else None
        if user is None:
            abort(
                401,
                message="A valid API key is required: send it as 'Authorization: Bearer <key>'.",
                headers={"WWW-Authenticate": 'Bearer realm="connector"'},
            )
        g.current_user = user
        return view(*args, **kwargs)

    return cast(F, wrapped)

"""One-time sign-in links to the admin page, for servers with neither Google nor Microsoft
sign-in: `connector admin-link --email` prints one, /admin/sign-in takes it (no Flask here:
the command and the web page share it)."""

from __future__ import annotations

import secrets

from itsdangerous import BadSignature, URLSafeTimedSerializer

MAX_AGE_SECONDS = 15 * 60


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt="admin-link")


def admin_link(public_url: str, secret_key: str, user_id: int) -> str:
    """A link that signs its holder in as the user, once, within 15 minutes."""
    token = _serializer(secret_key).dumps([user_id, secrets.token_urlsafe(16)])
    return f"{public_url.rstrip('/')}/admin/sign-in?t={token}"


def read_admin_link(secret_key: str, token: str) -> tuple[int, str] | None:
    """The user id and the link's own nonce (to use it once), or None when it is not a
    valid, unexpired link."""
    try:
        user_id, nonce = _serializer(secret_key).loads(token, max_age=MAX_AGE_SECONDS)
    except (BadSignature, ValueError, TypeError):
        return None
    if not isinstance(user_id, int) or not isinstance(nonce, str):
        return None
    return user_id, nonce

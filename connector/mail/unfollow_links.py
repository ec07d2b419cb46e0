"""The signed link in relayed mail that lets a follower stop following (RFC 2369's
List-Unsubscribe, and RFC 8058's one-click POST to the same URL).

The token names the follower row and is an HMAC of it under a key derived from the secret
key: it cannot be made for another follower, and it does not expire (an old relayed mail
must still let its reader leave).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

_SIGNATURE_BYTES = 12
_TOKEN = re.compile(r"f(\d{1,12})\.([A-Za-z0-9_-]{16})")


def _signature(secret_key: str, follower_id: int) -> str:
    key = hashlib.sha256(b"connector unfollow link\x00" + secret_key.encode()).digest()
    digest = hmac.new(key, str(follower_id).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:_SIGNATURE_BYTES]).decode().rstrip("=")


def unfollow_token(secret_key: str, follower_id: int) -> str:
    return f"f{follower_id}.{_signature(secret_key, follower_id)}"


def follower_of_token(secret_key: str, token: str) -> int | None:
    """The follower id a token names; None when it is not one of ours."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        return None
    follower_id = int(match.group(1))
    expected = _signature(secret_key, follower_id)
    return follower_id if hmac.compare_digest(expected, match.group(2)) else None


def unfollow_path(secret_key: str, follower_id: int) -> str:
    """The path of the unfollow page (`CONNECTOR_PUBLIC_URL` goes in front)."""
    return f"/unfollow/{unfollow_token(secret_key, follower_id)}"

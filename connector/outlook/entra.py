"""Validating Entra ID access tokens from the Outlook add-in (nested app authentication).

PyJWT checks the signature against the tenant's signing keys (JWKS, fetched once
and cached), RS256 only, the issuer for the token's own tenant, the audience (our
API's client ID), the API's scope in `scp`, and expiry.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import requests

DEFAULT_JWKS_URL = "https://login.microsoftonline.com/common/discovery/v2.0/keys"
JWKS_MAX_AGE = 24 * 3600
MIN_REFETCH_SECONDS = 60
LEEWAY_SECONDS = 30


class InvalidEntraToken(Exception):
    """Not a token we accept; callers answer 401 and say no more."""


@dataclass(frozen=True)
class EntraIdentity:
    email: str
    object_id: str
    tenant_id: str


class JwksCache:
    def __init__(self, url: str, fetch: Callable[[str], requests.Response] | None = None) -> None:
        self.url = url
        self._fetch = fetch or (lambda u: requests.get(u, timeout=5))
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        try:
            response = self._fetch(self.url)
            response.raise_for_status()
            document = response.json()
            keys = {
                key["kid"]: jwt.PyJWK(key, algorithm="RS256").key
                for key in document.get("keys", [])
                if key.get("kty") == "RSA" and key.get("kid")
            }
        except (requests.RequestException, ValueError, KeyError, jwt.PyJWKError) as exc:
            raise InvalidEntraToken("signing keys unavailable") from exc
        self._keys = keys
        self._fetched_at = time.monotonic()

    def key(self, key_id: str) -> Any:
        with self._lock:
            now = time.monotonic()
            stale = now - self._fetched_at > JWKS_MAX_AGE
            unknown = key_id not in self._keys and now - self._fetched_at > MIN_REFETCH_SECONDS
            if stale or unknown or not self._fetched_at:
                self._refresh()
            if key_id not in self._keys:
                raise InvalidEntraToken("unknown signing key")
            return self._keys[key_id]


@dataclass(frozen=True)
class EntraTokenValidator:
    keys: JwksCache
    client_id: str
    scope: str
    issuer_template: str = "https://login.microsoftonline.com/{tid}/v2.0"

    def validate(self, token: str) -> EntraIdentity:
        if not self.client_id:
            raise InvalidEntraToken("Entra sign-in is not configured")
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != "RS256":
                raise InvalidEntraToken("algorithm not allowed")
            unverified = jwt.decode(token, options={"verify_signature": False})
            tenant = str(unverified.get("tid", ""))
            if not tenant:
                raise InvalidEntraToken("no tenant")
            claims = jwt.decode(
                token,
                self.keys.key(str(header.get("kid", ""))),
                algorithms=["RS256"],
                audience=self.client_id,
                issuer=self.issuer_template.format(tid=tenant),
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "aud", "iss", "tid", "oid"]},
            )
        except (jwt.PyJWTError, json.JSONDecodeError, ValueError, TypeError) as exc:
            raise InvalidEntraToken(str(exc)) from exc
        if self.scope not in str(claims.get("scp", "")).split():
            raise InvalidEntraToken("scope missing")
        email = str(claims.get("preferred_username") or claims.get("email") or "").strip().lower()
        if "@" not in email:
            raise InvalidEntraToken("no user name")
        return EntraIdentity(email=email, object_id=str(claims["oid"]), tenant_id=tenant)

"""Validating Entra ID access tokens from the Outlook add-in (nested app authentication).

PyJWT checks the signature against the tenant's signing keys (JWKS, fetched once
and cached), RS256 only, the issuer for the token's own tenant, the audience (our
API's client ID), the API's scope in `scp`, and expiry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import jwt

from connector.keysets import KeySetUnavailable, RemoteKeySet

DEFAULT_JWKS_URL = "https://login.microsoftonline.com/common/discovery/v2.0/keys"
JWKS_MAX_AGE = 24 * 3600
LEEWAY_SECONDS = 30


class InvalidEntraToken(Exception):
    """Not a token we accept; callers answer 401 and say no more."""


@dataclass(frozen=True)
class EntraIdentity:
    email: str
    object_id: str
    tenant_id: str


def _rsa_keys(document: Any) -> dict[str, Any]:
    try:
        return {
            key["kid"]: jwt.PyJWK(key, algorithm="RS256").key
            for key in document.get("keys", [])
            if key.get("kty") == "RSA" and key.get("kid")
        }
    except jwt.PyJWKError as exc:
        raise ValueError(str(exc)) from exc


class JwksCache:
    """Entra's signing keys (key ID -> RSA public key), cached."""

    def __init__(self, url: str) -> None:
        self._keys = RemoteKeySet(url, _rsa_keys, JWKS_MAX_AGE)

    def key(self, key_id: str) -> Any:
        try:
            keys = self._keys.get(key_id)
        except KeySetUnavailable as exc:
            raise InvalidEntraToken("signing keys unavailable") from exc
        if key_id not in keys:
            raise InvalidEntraToken("unknown signing key")
        return keys[key_id]


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

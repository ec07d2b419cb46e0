"""Verifying Google-signed ID tokens: the add-on's system token and the user's token.

Google's certificates are fetched once and kept until their Cache-Control max-age
runs out (or, if a token names a key we do not have, once more: Google rotates
keys), never per request.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from google.auth import exceptions as google_exceptions
from google.auth import jwt

GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")
DEFAULT_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
DEFAULT_MAX_AGE = 3600
MIN_REFETCH_SECONDS = 60
CLOCK_SKEW_SECONDS = 30


class InvalidToken(Exception):
    """The token is not one we accept; callers answer 401 and say no more."""


class CertificateCache:
    def __init__(self, url: str, fetch: Callable[[str], requests.Response] | None = None) -> None:
        self.url = url
        self._fetch = fetch or (lambda u: requests.get(u, timeout=5))
        self._certs: dict[str, str] = {}
        self._expires_at = 0.0
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        try:
            response = self._fetch(self.url)
            response.raise_for_status()
            certs = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise InvalidToken("certificates unavailable") from exc
        if not isinstance(certs, dict):
            raise InvalidToken("certificates malformed")
        match = re.search(r"max-age=(\d+)", response.headers.get("Cache-Control", ""))
        now = time.monotonic()
        self._certs = {str(k): str(v) for k, v in certs.items()}
        self._fetched_at = now
        self._expires_at = now + (int(match.group(1)) if match else DEFAULT_MAX_AGE)

    def get(self, key_id: str | None) -> Mapping[str, str]:
        with self._lock:
            now = time.monotonic()
            stale = now >= self._expires_at
            unknown_key = key_id is not None and key_id not in self._certs
            if stale or (unknown_key and now - self._fetched_at > MIN_REFETCH_SECONDS):
                self._refresh()
            return dict(self._certs)


@dataclass(frozen=True)
class GoogleTokenVerifier:
    certificates: CertificateCache

    def verify(self, token: str, audience: str) -> dict[str, Any]:
        """The token's claims, if Google signed it for this audience and it is still valid."""
        try:
            header = jwt.decode_header(token)
            certs = self.certificates.get(header.get("kid"))
            claims = jwt.decode(
                token, certs=certs, audience=audience, clock_skew_in_seconds=CLOCK_SKEW_SECONDS
            )
        except (ValueError, google_exceptions.GoogleAuthError, TypeError, KeyError) as exc:
            raise InvalidToken(str(exc)) from exc
        if claims.get("iss") not in GOOGLE_ISSUERS:
            raise InvalidToken("wrong issuer")
        return claims

    def verify_system_token(self, token: str, audience: str, service_account: str) -> None:
        """The add-on's request: signed by Google, for our endpoint, from our add-on's account."""
        claims = self.verify(token, audience)
        email = str(claims.get("email", "")).lower()
        if not service_account or email != service_account.lower():
            raise InvalidToken("wrong service account")
        if claims.get("email_verified") is False:
            raise InvalidToken("unverified service account")

    def verify_user_token(self, token: str, client_id: str) -> str:
        """The verified, lower-cased email of the user the add-on runs for."""
        claims = self.verify(token, client_id)
        email = str(claims.get("email", "")).strip().lower()
        if not email or claims.get("email_verified") is False:
            raise InvalidToken("no verified email")
        return email

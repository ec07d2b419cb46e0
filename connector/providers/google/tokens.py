"""Verifying Google-signed ID tokens: the add-on's system token and the user's token.

Google's certificates are fetched once and kept until their Cache-Control max-age
runs out (or, if a token names a key we do not have, once more: Google rotates
keys), never per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from google.auth import exceptions as google_exceptions
from google.auth import jwt

from connector.keysets import KeySetUnavailable, RemoteKeySet

GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")
DEFAULT_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
DEFAULT_MAX_AGE = 3600
CLOCK_SKEW_SECONDS = 30


class InvalidToken(Exception):
    """The token is not one we accept; callers answer 401 and say no more."""


def _google_certificates(document: Any) -> dict[str, str]:
    if not isinstance(document, dict):
        raise ValueError("certificates malformed")
    return {str(key_id): str(cert) for key_id, cert in document.items()}


def google_certificates(url: str) -> RemoteKeySet:
    """Google's certificates (key ID -> PEM), kept for their Cache-Control max-age."""
    return RemoteKeySet(url, _google_certificates, DEFAULT_MAX_AGE)


@dataclass(frozen=True)
class GoogleTokenVerifier:
    certificates: RemoteKeySet

    def verify(self, token: str, audience: str) -> dict[str, Any]:
        """The token's claims, if Google signed it for this audience and it is still valid."""
        try:
            header = jwt.decode_header(token)
            certs = self.certificates.get(header.get("kid"))
            # google-auth leaves decode unannotated: it returns the JSON payload, an object.
            claims = cast(
                dict[str, Any],
                jwt.decode(
                    token, certs=certs, audience=audience, clock_skew_in_seconds=CLOCK_SKEW_SECONDS
                ),
            )
        except (
            ValueError,
            google_exceptions.GoogleAuthError,
            TypeError,
            KeyError,
            KeySetUnavailable,
        ) as exc:
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

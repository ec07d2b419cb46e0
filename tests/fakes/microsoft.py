"""Microsoft's side, played locally: an Entra ID signing key, its JWKS endpoint, access tokens."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, jsonify

CLIENT_ID = "11111111-2222-3333-4444-555555555555"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OTHER_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"


@dataclass
class FakeEntra:
    key: Any = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    other_key: Any = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    key_id: str = "entra-key-1"
    jwks_fetches: int = 0

    def jwks_app(self) -> Flask:
        app = Flask("fake-entra")

        @app.get("/discovery/v2.0/keys")
        def keys() -> Any:
            self.jwks_fetches += 1
            public = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
            return jsonify(keys=[{**public, "kid": self.key_id, "use": "sig", "alg": "RS256"}])

        return app

    def claims(self, email: str, tenant: str = TENANT, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        return {
            "aud": CLIENT_ID,
            "iss": f"https://login.microsoftonline.com/{tenant}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "tid": tenant,
            "oid": str(uuid.uuid4()),
            "preferred_username": email,
            "scp": "access_as_user",
            "ver": "2.0",
            **overrides,
        }

    def token(
        self,
        email: str,
        *,
        key: Any = None,
        algorithm: str = "RS256",
        tenant: str = TENANT,
        **overrides: Any,
    ) -> str:
        return jwt.encode(
            self.claims(email, tenant, **overrides),
            key if key is not None else self.key,
            algorithm=algorithm,
            headers={"kid": self.key_id},
        )


def hs256_token(claims: dict[str, Any], secret: bytes, key_id: str) -> str:
    """The "algorithm confusion" attack: HS256, keyed with the RSA public key's bytes.

    PyJWT refuses to make one, so it is assembled by hand.
    """
    import base64
    import hashlib
    import hmac
    import json

    def part(value: bytes) -> str:
        return base64.urlsafe_b64encode(value).rstrip(b"=").decode()

    header = part(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key_id}).encode())
    payload = part(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{part(signature)}"

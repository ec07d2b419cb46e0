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


@dataclass
class FakeMicrosoftIdP:
    """Entra ID's OpenID configuration, authorize and token endpoints (served over TLS)."""

    entra: FakeEntra
    client_secret: str = "ms-client-secret"
    user_email: str = "ann@acme.test"
    tenant: str = TENANT
    mode: str = "ok"  # "ok", "token_error", "wrong_nonce"
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def app(self) -> Flask:
        import base64
        import hashlib
        import html
        import json
        import secrets
        from urllib.parse import urlencode

        from flask import request

        app = Flask("fake-microsoft-idp")

        @app.get("/<tenant>/v2.0/.well-known/openid-configuration")
        def openid_configuration(tenant: str) -> Any:
            base = request.host_url.rstrip("/")
            return jsonify(
                authorization_endpoint=f"{base}/{tenant}/oauth2/v2.0/authorize",
                token_endpoint=f"{base}/{tenant}/oauth2/v2.0/token",
                issuer=f"https://login.microsoftonline.com/{self.tenant}/v2.0",
            )

        @app.get("/<tenant>/oauth2/v2.0/authorize")
        def authorize(tenant: str) -> Any:
            args = request.args
            code = secrets.token_urlsafe(16)
            self.codes[code] = {"challenge": args.get("code_challenge"), "nonce": args.get("nonce")}
            target = args["redirect_uri"] + "?"
            allow = target + urlencode({"state": args["state"], "code": code})
            deny = target + urlencode({"state": args["state"], "error": "access_denied"})
            return (
                "<!doctype html><title>Sign in to your account</title>"
                "<h1>Permissions requested by Connector</h1>"
                f'<a href="{html.escape(allow)}">Accept</a> '
                f'<a href="{html.escape(deny)}">Cancel</a>'
            )

        @app.post("/<tenant>/oauth2/v2.0/token")
        def token(tenant: str) -> Any:
            form = request.form
            if self.mode == "token_error":
                return jsonify(error="invalid_grant", error_description="AADSTS70000"), 400
            grant = self.codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            if grant is None or grant["challenge"] != challenge.rstrip(b"=").decode():
                return jsonify(error="invalid_grant"), 400
            if form.get("client_secret") != self.client_secret:
                return jsonify(error="invalid_client"), 401
            nonce = "not-the-nonce" if self.mode == "wrong_nonce" else grant["nonce"]
            claims = self.entra.claims(self.user_email, self.tenant, nonce=nonce, sub="ms-sub")
            id_token = jwt.encode(
                claims, self.entra.key, algorithm="RS256", headers={"kid": self.entra.key_id}
            )
            info = {"uid": claims["oid"], "utid": self.tenant}
            client_info = base64.urlsafe_b64encode(json.dumps(info).encode()).decode().rstrip("=")
            return jsonify(
                token_type="Bearer",
                scope="User.Read openid profile offline_access",
                expires_in=3600,
                access_token="eyJ.fake-graph-access",
                refresh_token="0.fake-ms-refresh-secret",
                id_token=id_token,
                client_info=client_info,
            )

        return app

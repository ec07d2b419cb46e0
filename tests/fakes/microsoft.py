"""Microsoft's side, played locally: an Entra ID signing key, its JWKS endpoint, access tokens."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from flask import Flask, jsonify

from tests.fakes.keys import rsa_key

CLIENT_ID = "11111111-2222-3333-4444-555555555555"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OTHER_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"


@dataclass
class FakeEntra:
    key: Any = field(default_factory=rsa_key)
    other_key: Any = field(default_factory=rsa_key)
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
    user_name: str = "Ann Example"
    tenant: str = TENANT
    # "ok", "token_error", "wrong_nonce", "revoked" (refresh tokens), "server_error",
    # "html_error" (an error page instead of JSON)
    mode: str = "ok"
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    # Refresh tokens this fake would honour, with the Graph permissions consented to, and
    # the access tokens it issued with theirs (for the fake Graph).
    refresh_tokens: dict[str, set[str]] = field(
        default_factory=lambda: {"0.fake-ms-refresh-secret": set(MAIL_PERMISSIONS)}
    )
    access_tokens: dict[str, set[str]] = field(default_factory=dict)

    def client_info(self, oid: str) -> str:
        """What Entra returns beside the tokens for msal to key its cache on."""
        import base64
        import json

        info = json.dumps({"uid": oid, "utid": self.tenant}).encode()
        return base64.urlsafe_b64encode(info).decode().rstrip("=")

    def app(self) -> Flask:
        import base64
        import hashlib
        import html
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
            self.codes[code] = {
                "challenge": args.get("code_challenge"),
                "nonce": args.get("nonce"),
                "scope": args.get("scope", ""),
            }
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
            self.token_requests.append(form.to_dict())
            if self.mode == "token_error":
                return jsonify(error="invalid_grant", error_description="AADSTS70000"), 400
            if self.mode == "server_error":
                return jsonify(error="temporarily_unavailable", error_description="AADSTS"), 503
            if self.mode == "html_error":
                return "<html><body>Sorry, something went wrong.</body></html>", 400
            if form.get("grant_type") == "refresh_token":
                return refresh(form)
            grant = self.codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            if grant is None or grant["challenge"] != challenge.rstrip(b"=").decode():
                return jsonify(error="invalid_grant"), 400
            if form.get("client_secret") != self.client_secret:
                return jsonify(error="invalid_client"), 401
            nonce = "not-the-nonce" if self.mode == "wrong_nonce" else grant["nonce"]
            claims = self.entra.claims(
                self.user_email, self.tenant, nonce=nonce, sub="ms-sub", name=self.user_name
            )
            id_token = jwt.encode(
                claims, self.entra.key, algorithm="RS256", headers={"kid": self.entra.key_id}
            )
            client_info = self.client_info(claims["oid"])
            graph_scopes = [s for s in grant["scope"].split() if s not in OIDC_SCOPES]
            self.access_tokens["eyJ.fake-graph-access"] = set(graph_scopes)
            self.refresh_tokens["0.fake-ms-refresh-secret"] = set(graph_scopes)
            return jsonify(
                token_type="Bearer",
                scope=" ".join(graph_scopes + ["openid", "profile", "offline_access"]),
                expires_in=3600,
                access_token="eyJ.fake-graph-access",
                refresh_token="0.fake-ms-refresh-secret",
                id_token=id_token,
                client_info=client_info,
            )

        def refresh(form: Any) -> Any:
            if form.get("client_secret") != self.client_secret:
                return jsonify(error="invalid_client"), 401
            old = form.get("refresh_token", "")
            if self.mode == "revoked" or old not in self.refresh_tokens:
                return jsonify(
                    error="invalid_grant",
                    error_description="AADSTS50173: The provided grant has expired.",
                ), 400
            consented = self.refresh_tokens[old]
            wanted = {s for s in form.get("scope", "").split() if s not in OIDC_SCOPES}
            if not wanted <= consented:
                return jsonify(
                    error="invalid_grant",
                    error_description="AADSTS65001: The user has not consented.",
                ), 400
            # Entra rotates refresh tokens: the new one works, and so (for a while) does the old.
            number = len(self.access_tokens) + 1
            new_refresh = f"0.fake-ms-refresh-rotated-{number}"
            self.refresh_tokens[new_refresh] = consented
            access = f"eyJ.fake-graph-access-{number}"
            self.access_tokens[access] = wanted
            client_info = self.client_info("ms-oid")
            scopes = [s for s in form.get("scope", "").split() if s not in OIDC_SCOPES]
            return jsonify(
                token_type="Bearer",
                scope=" ".join(scopes),
                expires_in=3600,
                access_token=access,
                refresh_token=new_refresh,
                client_info=client_info,
            )

        return app


OIDC_SCOPES = {"openid", "profile", "offline_access", "email"}
MAIL_PERMISSIONS = ("User.Read", "Mail.ReadWrite", "Mail.Send")


@dataclass
class FakeGraph:
    """Microsoft Graph's messages, enough to reply: createReply, PATCH the draft, send.

    Like Exchange, createReply threads the draft itself: it addresses the sender,
    prefixes "RE:", quotes the original and sets In-Reply-To and References.
    """

    idp: FakeMicrosoftIdP
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    drafts: dict[str, dict[str, Any]] = field(default_factory=dict)
    sent: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    bearers: list[str] = field(default_factory=list)
    # "ok", "unauthorized", "error" (every call), "patch_error", "send_error" (a 503 after
    # Exchange sent it), "send_refused" (a 403), "send_hangs" (no answer within the timeout)
    mode: str = "ok"
    hang_seconds: float = 2.0

    def add_message(self, message_id: str, **fields: Any) -> None:
        self.messages[message_id] = {"id": message_id, **fields}

    def app(self) -> Flask:
        from flask import abort, request

        app = Flask("fake-graph")

        @app.before_request
        def authorize() -> Any:
            header = request.headers.get("Authorization", "")
            bearer = header.removeprefix("Bearer ")
            self.bearers.append(bearer)
            if self.mode == "unauthorized" or bearer not in self.idp.access_tokens:
                return jsonify(error={"code": "InvalidAuthenticationToken"}), 401
            if self.mode == "error":
                return jsonify(error={"code": "ServiceNotAvailable"}), 503
            # Delegated permissions, as Graph checks them: drafts need Mail.ReadWrite.
            needed = "Mail.Send" if request.path.endswith("/send") else "Mail.ReadWrite"
            if needed not in self.idp.access_tokens[bearer]:
                return jsonify(error={"code": "ErrorAccessDenied"}), 403
            return None

        @app.post("/v1.0/me/messages/<message_id>/createReply")
        def create_reply(message_id: str) -> Any:
            if not message_id.startswith("AAMk"):
                return jsonify(error={"code": "ErrorInvalidIdMalformed"}), 400
            original = self.messages.get(message_id)
            if original is None:
                return jsonify(error={"code": "ErrorItemNotFound"}), 404
            number = len(self.drafts) + 1
            draft_id = f"AAMkADraft{number}-_=="
            references = " ".join(
                p for p in (original.get("references"), original["internetMessageId"]) if p
            )
            draft = {
                "id": draft_id,
                "internetMessageId": f"<draft{number}@fake.outlook.test>",
                "conversationId": original["conversationId"],
                "subject": "RE: " + original["subject"],
                "toRecipients": [original["from"]],
                "ccRecipients": [],
                "isDraft": True,
                "body": {
                    "contentType": "html",
                    "content": '<html><head></head><body dir="ltr"><hr><b>From:</b> '
                    + original["from"]["emailAddress"]["address"]
                    + "<br>"
                    + original["body"]
                    + "</body></html>",
                },
                "internetMessageHeaders": [
                    {"name": "In-Reply-To", "value": original["internetMessageId"]},
                    {"name": "References", "value": references},
                ],
            }
            self.drafts[draft_id] = draft
            return jsonify(draft), 201

        @app.patch("/v1.0/me/messages/<draft_id>")
        def update(draft_id: str) -> Any:
            draft = self.drafts.get(draft_id) or abort(404)
            if self.mode == "patch_error":
                return jsonify(error={"code": "ErrorInternalServerError"}), 500
            draft.update(request.get_json())
            return jsonify(draft)

        @app.post("/v1.0/me/messages/<draft_id>/send")
        def send(draft_id: str) -> Any:
            if self.mode == "send_refused":
                return jsonify(error={"code": "ErrorAccessDenied"}), 403
            draft = self.drafts.pop(draft_id, None) or abort(404)
            self.sent.append({**draft, "isDraft": False})
            if self.mode == "send_hangs":
                time.sleep(self.hang_seconds)
            if self.mode == "send_error":
                return jsonify(error={"code": "ErrorInternalServerError"}), 503
            return "", 202

        @app.delete("/v1.0/me/messages/<draft_id>")
        def delete(draft_id: str) -> Any:
            self.drafts.pop(draft_id, None) or abort(404)
            self.deleted.append(draft_id)
            return "", 204

        return app

"""Google's side, played locally: signing keys and a certificates endpoint, ID tokens,
and a Gmail API that serves real MIME messages and records the drafts it is sent.
"""

from __future__ import annotations

import base64
import email
import functools
import itertools
import time
from dataclasses import dataclass, field
from email import policy
from typing import Any

from cryptography.hazmat.primitives import serialization
from flask import Flask, abort, jsonify, request
from google.auth import crypt, jwt

from tests.fakes.keys import rsa_key
from tests.fakes.servers import self_signed_certificate


@dataclass
class SigningKey:
    key_id: str
    private_pem: bytes
    cert_pem: str

    @classmethod
    def generate(cls, key_id: str) -> SigningKey:
        key = rsa_key()
        cert = self_signed_certificate(key, "fake-google")
        private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return cls(key_id, private_pem, cert.public_bytes(serialization.Encoding.PEM).decode())

    @functools.cached_property
    def signer(self) -> crypt.RSASigner:
        # Loading the PEM checks the RSA key (some 40 ms): once per key, not once per token.
        return crypt.RSASigner.from_string(self.private_pem, self.key_id)

    def sign(self, claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
        return jwt.encode(self.signer, claims, header=header).decode()


SERVICE_ACCOUNT = "service-123456789@gcp-sa-gsuiteaddons.iam.gserviceaccount.com"
CLIENT_ID = "123456789-fake.apps.googleusercontent.com"


@dataclass
class FakeGoogle:
    """Keys, tokens and the certificates endpoint."""

    key: SigningKey = field(default_factory=lambda: SigningKey.generate("key-1"))
    other_key: SigningKey = field(default_factory=lambda: SigningKey.generate("key-1"))
    cert_fetches: int = 0

    def certs_app(self) -> Flask:
        app = Flask("fake-google-certs")

        @app.get("/oauth2/v1/certs")
        def certs() -> Any:
            self.cert_fetches += 1
            response = jsonify({self.key.key_id: self.key.cert_pem})
            response.headers["Cache-Control"] = "public, max-age=3600"
            return response

        return app

    def token(
        self,
        audience: str,
        email_address: str,
        *,
        key: SigningKey | None = None,
        issuer: str = "https://accounts.google.com",
        lifetime: int = 3600,
        **extra: Any,
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": issuer,
            "aud": audience,
            "sub": "1234567890",
            "email": email_address,
            "email_verified": True,
            "iat": now,
            "exp": now + lifetime,
            **extra,
        }
        return (key or self.key).sign(claims)

    def system_token(self, audience: str, **kwargs: Any) -> str:
        return self.token(audience, kwargs.pop("email_address", SERVICE_ACCOUNT), **kwargs)

    def user_token(self, email_address: str, **kwargs: Any) -> str:
        return self.token(kwargs.pop("audience", CLIENT_ID), email_address, **kwargs)


def unsigned(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        import json

        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@dataclass
class FakeGmail:
    """users.messages.get (metadata, raw) and users.drafts.create, with real MIME messages."""

    messages: dict[str, bytes] = field(default_factory=dict)
    threads: dict[str, str] = field(default_factory=dict)
    drafts: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_next: int = 0
    # Send, then answer 503: the reply went out and its sender never heard.
    send_fails_after_sending: bool = False
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def add(self, message_id: str, raw: bytes, thread_id: str = "thread-1") -> None:
        self.messages[message_id] = raw
        self.threads[message_id] = thread_id

    def app(self) -> Flask:
        app = Flask("fake-gmail")

        def record() -> None:
            self.requests.append(
                {
                    "path": request.path,
                    "args": request.args.to_dict(flat=False),
                    "authorization": request.headers.get("Authorization"),
                    "gmail_access_token": request.headers.get("X-Goog-Gmail-Access-Token"),
                }
            )
            if self.fail_next:
                self.fail_next -= 1
                abort(503)

        @app.get("/gmail/v1/users/<user>/messages/<message_id>")
        def get_message(user: str, message_id: str) -> Any:
            record()
            raw = self.messages.get(message_id)
            if raw is None:
                return jsonify(error={"code": 404, "message": "Not Found"}), 404
            body: dict[str, Any] = {"id": message_id, "threadId": self.threads[message_id]}
            fmt = request.args.get("format", "full")
            if fmt == "raw":
                body["raw"] = base64.urlsafe_b64encode(raw).decode()
            else:
                parsed = email.message_from_bytes(raw, policy=policy.default)
                wanted = {h.lower() for h in request.args.getlist("metadataHeaders")}
                body["payload"] = {
                    "mimeType": parsed.get_content_type(),
                    "headers": [
                        {"name": name, "value": _header_value(name, value)}
                        for name, value in parsed.raw_items()
                        if not wanted or name.lower() in wanted
                    ],
                }
            return jsonify(body)

        @app.post("/gmail/v1/users/<user>/messages/send")
        def send_message(user: str) -> Any:
            record()
            payload = request.get_json()
            raw = base64.urlsafe_b64decode(payload["raw"])
            self.sent.append(
                {
                    "raw": raw,
                    "threadId": payload.get("threadId"),
                    "authorization": request.headers.get("Authorization"),
                }
            )
            if self.send_fails_after_sending:
                # Gmail sent it, then the answer was lost: a 503 to the caller.
                abort(503)
            return jsonify(id=f"sent-{len(self.sent)}", threadId=payload.get("threadId"))

        @app.post("/gmail/v1/users/<user>/drafts")
        def create_draft(user: str) -> Any:
            record()
            payload = request.get_json()
            raw = base64.urlsafe_b64decode(payload["message"]["raw"])
            number = next(self._ids)
            draft = {
                "id": f"r-draft-{number}",
                "message": {
                    "id": f"draft-message-{number}",
                    "threadId": payload["message"].get("threadId", f"new-thread-{number}"),
                },
            }
            self.drafts.append({**draft, "raw": raw})
            return jsonify(draft)

        return app


@dataclass
class FakeGoogleIdP:
    """Google's authorization and token endpoints: a consent page, codes, PKCE, ID tokens."""

    google: FakeGoogle
    client_id: str = "web-client-id.apps.googleusercontent.com"
    client_secret: str = "web-client-secret"
    user_email: str = "ann@acme.test"
    # "ok", "token_error", "wrong_nonce", "revoked", "client_error", "revoke_down"
    mode: str = "ok"
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_requests: list[dict[str, Any]] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    # Claims about the person beyond the address: a Workspace account carries "hd".
    profile: dict[str, Any] = field(default_factory=dict)

    def app(self) -> Flask:
        import hashlib
        import html
        import secrets
        from urllib.parse import urlencode

        app = Flask("fake-google-idp")

        @app.get("/o/oauth2/v2/auth")
        def authorize() -> Any:
            args = request.args
            assert args["client_id"] == self.client_id
            assert args["code_challenge_method"] == "S256"
            code = secrets.token_urlsafe(16)
            self.codes[code] = {
                "challenge": args["code_challenge"],
                "nonce": args.get("nonce"),
                "redirect_uri": args["redirect_uri"],
                "scope": args["scope"],
            }
            allow = args["redirect_uri"] + "?" + urlencode({"state": args["state"], "code": code})
            deny = (
                args["redirect_uri"]
                + "?"
                + urlencode({"state": args["state"], "error": "access_denied"})
            )
            return (
                "<!doctype html><title>Sign in - Google Accounts</title>"
                f"<h1>Connector wants to access your Google Account</h1>"
                f"<p>{html.escape(self.user_email)}</p>"
                f'<a id="allow" href="{html.escape(allow)}">Allow</a> '
                f'<a id="deny" href="{html.escape(deny)}">Cancel</a>'
            )

        @app.post("/token")
        def token() -> Any:
            form = request.form.to_dict()
            self.token_requests.append(form)
            if form.get("grant_type") == "refresh_token":
                if self.mode == "revoked" or form.get("refresh_token") != "1//stored-refresh":
                    return jsonify(error="invalid_grant", error_description="Token revoked"), 400
                if self.mode == "client_error":
                    # Our client secret was rotated away: nothing the user can fix.
                    return jsonify(error="invalid_client", error_description="Unauthorized"), 401
                return jsonify(
                    access_token="ya29.refreshed",
                    expires_in=3599,
                    token_type="Bearer",
                    scope=form.get("scope", ""),
                )
            if self.mode == "token_error":
                return jsonify(error="invalid_grant", error_description="Bad Request"), 400
            grant = self.codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            challenge = (
                base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                .rstrip(b"=")
                .decode()
            )
            if grant is None or grant["challenge"] != challenge:
                return jsonify(error="invalid_grant"), 400
            auth = request.authorization  # client_secret_basic, or the secret in the form
            secret = auth.password if auth else form.get("client_secret")
            client = auth.username if auth else form.get("client_id")
            if (client, secret) != (self.client_id, self.client_secret):
                return jsonify(error="invalid_client"), 401
            nonce = "not-the-nonce" if self.mode == "wrong_nonce" else grant["nonce"]
            id_token = self.google.token(
                self.client_id, self.user_email, nonce=nonce, sub="google-sub-1", **self.profile
            )
            return jsonify(
                access_token="ya29.fake-access",
                refresh_token="1//fake-refresh-token-secret",
                id_token=id_token,
                expires_in=3599,
                token_type="Bearer",
                scope=grant["scope"],
            )

        @app.post("/revoke")
        def revoke() -> Any:
            if self.mode == "revoke_down":
                return jsonify(error="backend_error"), 503
            self.revoked.append(request.form.get("token", ""))
            return "", 200

        return app


def _header_value(name: str, raw: str) -> str:
    """A header as Gmail gives it: decoded, in UTF-8. The standard library's parser fails
    on some real headers (a group followed by a comment): those come as written."""
    try:
        value = str(policy.default.header_fetch_parse(name, raw))
    except (AttributeError, ValueError, IndexError, TypeError, LookupError):
        value = raw
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")

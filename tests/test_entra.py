"""Entra ID access tokens (nested app authentication) on the API, tenant binding, and CORS."""

from __future__ import annotations

from collections.abc import Iterator

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from connector.providers.microsoft.entra import EntraTokenValidator, JwksCache
from tests.fakes.microsoft import CLIENT_ID, OTHER_TENANT, TENANT, FakeEntra, hs256_token
from tests.fakes.servers import serve


@pytest.fixture(scope="module")
def entra() -> Iterator[tuple[FakeEntra, str]]:
    fake = FakeEntra()
    with serve(fake.jwks_app()) as url:
        yield fake, url + "/discovery/v2.0/keys"


@pytest.fixture
def outlook(app, runner, caller, entra):
    fake, jwks_url = entra
    app.extensions["connector.entra_validator"] = EntraTokenValidator(
        JwksCache(jwks_url), client_id=CLIENT_ID, scope="access_as_user"
    )
    result = runner.invoke(args=["orgs", "bind-entra", "--org", "Acme", "--tenant", TENANT])
    assert result.exit_code == 0, result.output
    return fake


def me(client, token: str):
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})


def test_a_valid_token_reaches_the_api(client, caller, outlook) -> None:
    response = me(client, outlook.token(caller.email.upper()))
    assert response.status_code == 200
    assert response.json["email"] == caller.email
    lookup = client.get(
        "/api/v1/lookup?email=x@y.test",
        headers={"Authorization": f"Bearer {outlook.token(caller.email)}"},
    )
    assert lookup.status_code == 200


def test_bad_tokens_are_401(client, caller, outlook) -> None:
    public_pem = outlook.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    email = caller.email
    bad = {
        "forged": outlook.token(email, key=outlook.other_key),
        "expired": outlook.token(email, exp=1_000_000, iat=999_000, nbf=999_000),
        "wrong tenant": outlook.token(email, tenant=OTHER_TENANT),
        "issuer of another tenant": outlook.token(
            email, iss=f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0"
        ),
        "wrong audience": outlook.token(email, aud="api://someone-else"),
        "wrong algorithm (HS256 keyed with the public key)": hs256_token(
            outlook.claims(email), public_pem, outlook.key_id
        ),
        "unsigned": jwt.encode(outlook.claims(email), None, algorithm="none"),
        "missing scope": outlook.token(email, scp="User.Read"),
        "no scope at all": outlook.token(email, scp=""),
        "unknown user": outlook.token("nobody@acme.test"),
        "garbage": "a.b.c",
    }
    for what, token in bad.items():
        response = me(client, token)
        assert response.status_code == 401, what
        assert response.json["code"] == 401


def test_an_unbound_organization_takes_no_entra_token(client, make_caller, outlook) -> None:
    other = make_caller("Initech", "peter@initech.test")
    assert me(client, outlook.token(other.email)).status_code == 401


def test_bind_entra_errors(runner, caller) -> None:
    assert runner.invoke(args=["orgs", "bind-entra", "--org", "Acme", "--tenant", "x"]).exit_code
    missing = runner.invoke(args=["orgs", "bind-entra", "--org", "Nope", "--tenant", TENANT])
    assert missing.exit_code and "no organization" in missing.output
    runner.invoke(args=["orgs", "bind-entra", "--org", "Acme", "--tenant", TENANT])
    runner.invoke(
        args=["users", "create", "--org", "Initech", "--email", "p@i.test", "--name", "P"]
    )
    taken = runner.invoke(args=["orgs", "bind-entra", "--org", "Initech", "--tenant", TENANT])
    assert taken.exit_code and "bound to 'Acme'" in taken.output


def test_signing_keys_are_fetched_once(client, caller, outlook) -> None:
    before = outlook.jwks_fetches
    for _ in range(3):
        assert me(client, outlook.token(caller.email)).status_code == 200
    assert outlook.jwks_fetches - before <= 1


def test_cors_allows_exactly_the_configured_origins(app, client, caller) -> None:
    allowed = app.config["CORS_ORIGINS"][0]
    preflight = client.options(
        "/api/v1/lookup",
        headers={
            "Origin": allowed,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == allowed
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()
    response = client.get("/api/v1/me", headers={**caller.headers, "Origin": allowed})
    assert response.headers["Access-Control-Allow-Origin"] == allowed
    evil = client.options(
        "/api/v1/lookup",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "Access-Control-Allow-Origin" not in evil.headers

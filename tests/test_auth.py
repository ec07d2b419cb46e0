"""API keys: Bearer tokens, stored hashed; a wrong or missing key is 401."""

from __future__ import annotations

import sqlalchemy as sa

from connector.db import session_scope
from connector.orgs import service as orgs
from connector.orgs.models import ApiKey


def test_me_with_a_valid_key(caller) -> None:
    response = caller.get("/api/v1/me")
    assert response.status_code == 200
    assert response.json["email"] == "ann@acme.test"
    assert response.json["organization"]["name"] == "Acme"


def test_missing_key_is_401_with_json(client) -> None:
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json["code"] == 401
    assert "API key" in response.json["message"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_wrong_key_is_401(client, caller) -> None:
    for header in (
        "Bearer ck_not-a-real-key",
        "Bearer " + caller.key[:-1],
        "Basic " + caller.key,
        "Bearer",
        caller.key,
    ):
        response = client.get("/api/v1/lookup?email=x@y.com", headers={"Authorization": header})
        assert response.status_code == 401, header


def test_keys_are_stored_hashed(app, caller) -> None:
    with session_scope(app) as session:
        stored = session.scalars(sa.select(ApiKey.key_hash)).all()
        assert caller.key not in stored
        assert orgs.hash_key(caller.key) in stored


def test_revoked_key_stops_working(app, caller) -> None:
    assert caller.get("/api/v1/me").status_code == 200
    with session_scope(app) as session:
        key = session.scalar(sa.select(ApiKey).where(ApiKey.key_hash == orgs.hash_key(caller.key)))
        orgs.revoke_key(session, key)
    assert caller.get("/api/v1/me").status_code == 401


def test_unknown_route_is_json_404(client) -> None:
    response = client.get("/api/v1/nope")
    assert response.status_code == 404
    assert response.json["code"] == 404


def test_every_api_endpoint_needs_a_key(app, client) -> None:
    checked = 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.rule.endswith("openapi.json"):
            continue
        url = rule.rule.replace("<int:", "<").replace("<record_id>", "1")
        for name in ("activity_id", "attachment_id", "task_id", "template_id"):
            url = url.replace(f"<{name}>", "1")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            response = client.open(url, method=method, json={})
            assert response.status_code == 401, (method, url)
            assert response.json["code"] == 401
            checked += 1
    assert checked >= 20

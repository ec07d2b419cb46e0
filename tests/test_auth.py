"""API keys: Bearer tokens, stored hashed; a wrong or missing key is 401."""

from __future__ import annotations

import datetime as dt
import re
import shutil

import redis
import sqlalchemy as sa

from connector.app import create_app
from connector.db import session_scope
from connector.orgs import service as orgs
from connector.orgs.models import ApiKey
from tests.conftest import base_config


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
        # Every path parameter (record_id, alias_id...) as an id that could exist.
        url = re.sub(r"<(?:\w+:)?\w+>", "1", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            response = client.open(url, method=method, json={})
            assert response.status_code == 401, (method, url)
            assert response.json["code"] == 401
            checked += 1
    assert checked >= 20


def test_wrong_keys_are_rate_limited_per_address_and_valid_keys_still_pass(app, client, caller):
    wrong = {"Authorization": "Bearer ck_not-a-real-key"}
    answers = []
    for n in range(300):
        answers.append(client.get("/api/v1/me", headers=wrong))
        if n % 50 == 0:
            # A colleague behind the same address, with a valid key, is never held back.
            assert caller.get("/api/v1/me").status_code == 200
    codes = [answer.status_code for answer in answers]
    assert codes == [401] * 20 + [429] * 280
    limited = answers[-1]
    assert limited.json["code"] == 429
    assert limited.json["status"] == "Too Many Requests"
    assert "Too many wrong API keys" in limited.json["message"]
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert caller.get("/api/v1/me").status_code == 200
    # Per address: another client's first wrong key is a plain 401.
    elsewhere = client.get("/api/v1/me", headers=wrong, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert elsewhere.status_code == 401
    if app.config["REDIS_URL"]:
        # Counted in the shared store, so that all workers see the same failures.
        store = redis.Redis.from_url(app.config["REDIS_URL"])
        assert list(store.scan_iter(f"{app.config['REDIS_PREFIX']}limits*"))


def test_wrong_entra_tokens_count_too_and_missing_ones_do_not(client) -> None:
    for _ in range(30):
        assert client.get("/api/v1/me").status_code == 401
    codes = [
        client.get("/api/v1/me", headers={"Authorization": f"Bearer eyJ.not-a-jwt.{n}"}).status_code
        for n in range(21)
    ]
    assert codes == [401] * 20 + [429]


def _last_used(app, key: str):
    with session_scope(app) as session:
        return session.scalar(
            sa.select(ApiKey.last_used_at).where(ApiKey.key_hash == orgs.hash_key(key))
        )


def test_last_used_at_is_kept_within_a_minute(app, caller) -> None:
    assert _last_used(app, caller.key) is None
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    assert caller.get("/api/v1/me").status_code == 200
    first = _last_used(app, caller.key).replace(tzinfo=None)
    assert before - dt.timedelta(seconds=1) <= first <= before + dt.timedelta(seconds=10)
    # Fresh within the minute: not written again.
    assert caller.get("/api/v1/me").status_code == 200
    assert _last_used(app, caller.key).replace(tzinfo=None) == first
    stale = first - dt.timedelta(minutes=2)
    with session_scope(app) as session:
        session.execute(
            sa.update(ApiKey)
            .where(ApiKey.key_hash == orgs.hash_key(caller.key))
            .values(last_used_at=stale)
        )
    # A failing request (404 here) keeps it too.
    assert caller.get("/api/v1/contacts/999").status_code == 404
    assert _last_used(app, caller.key).replace(tzinfo=None) > stale + dt.timedelta(minutes=1)


def test_an_unreachable_store_leaves_wrong_keys_at_401(tmp_path, sqlite_template, caplog):
    path = tmp_path / "connector.sqlite3"
    shutil.copy(sqlite_template, path)
    # Nothing listens on port 1: the count cannot be kept, and the answer stays a 401.
    app = create_app(
        base_config(DATABASE_URL=f"sqlite:///{path}", REDIS_URL="redis://127.0.0.1:1/0")
    )
    client = app.test_client()
    wrong = {"Authorization": "Bearer ck_not-a-real-key"}
    codes = {client.get("/api/v1/me", headers=wrong).status_code for _ in range(25)}
    assert codes == {401}
    assert "Could not count a wrong token" in caplog.text
    app.extensions["connector.engine"].dispose()

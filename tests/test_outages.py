"""Outages: Redis is optional for the records (with it killed, emails log and lookups
answer), and a database that is unreachable or read-only is a 503 with Retry-After.

The Redis here is a process of the test's own, on a free loopback port, never the shared one.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask

from connector import create_app
from connector.db import session_scope
from connector.orgs import service as orgs
from connector.orgs.service import KEY_PREFIX
from tests.conftest import Caller, base_config, unavailable
from tests.helpers import create_contact, email_json


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    server = shutil.which("redis-server")
    if server is None:
        unavailable("redis-server", FileNotFoundError("not on PATH"))
    port = free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url, socket_connect_timeout=1).ping()
            break
        except redis.RedisError:
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail("the test's redis-server did not start")
            time.sleep(0.05)
    yield process, url
    process.kill()
    process.wait(timeout=10)


@pytest.fixture
def app_on_own_redis(own_redis, tmp_path: Path, sqlite_template: Path) -> Iterator[Flask]:
    _process, url = own_redis
    path = tmp_path / "connector.sqlite3"
    shutil.copy(sqlite_template, path)
    app = create_app(base_config(DATABASE_URL=f"sqlite:///{path}", REDIS_URL=url))
    yield app
    app.extensions["connector.engine"].dispose()


def make_caller(app: Flask) -> Caller:
    with session_scope(app) as session:
        org = orgs.get_or_create_org(session, "Acme")
        user = orgs.create_user(session, org, "ann@acme.test", "Ann")
        key = orgs.issue_key(session, user, "test")
        return Caller(app.test_client(), user.id, org.id, user.email, key)


def test_emails_log_and_lookups_answer_with_redis_killed(app_on_own_redis, own_redis) -> None:
    process, _url = own_redis
    caller = make_caller(app_on_own_redis)
    contact = create_contact(caller)
    records = [{"type": "contact", "id": contact["id"]}]
    lookup = "/api/v1/lookup?email=hank@globex.test"
    assert caller.get(lookup).json["results"][0]["activities"] == []  # now cached

    process.kill()
    process.wait(timeout=10)

    logged = caller.post("/api/v1/emails", json=email_json(records))
    assert logged.status_code == 201, logged.json
    again = caller.post("/api/v1/emails", json=email_json(records))
    assert again.status_code == 200 and again.json["already_logged"] is True
    answer = caller.get(lookup)
    assert answer.status_code == 200, answer.json
    # From the database, not the cache taken before: the logged email is there.
    [activity] = answer.json["results"][0]["activities"]
    assert activity["subject"] == "Quote for 50 seats"
    other = email_json(records, message_id="<m2@globex.test>", subject="Second")
    assert caller.post("/api/v1/emails", json=other).status_code == 201
    assert len(caller.get(lookup).json["results"][0]["activities"]) == 2


# The database: unreachable or read-only is a 503 with Retry-After, never a 500 ------------


def test_an_unreachable_database_is_a_503_with_retry_after(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder" / "connector.sqlite3"
    app = create_app(base_config(DATABASE_URL=f"sqlite:///{missing}"))
    client = app.test_client()
    headers = {"Authorization": "Bearer " + KEY_PREFIX + "x" * 40}
    for response in (
        client.get("/api/v1/me", headers=headers),
        client.post("/api/v1/notes", json={"body": "x", "records": []}, headers=headers),
    ):
        assert response.status_code == 503, response.get_data(as_text=True)
        assert response.headers["Retry-After"] == "5"
        body = response.json
        assert (body["code"], body["status"]) == (503, "Service Unavailable")
        assert "Try again" in body["message"]
    assert client.get("/readyz").status_code == 503
    # A browser (a signed-in person's account page) gets the same 503 as a page.
    with client.session_transaction() as session:
        session["user_id"] = 1
    page = client.get("/account", headers={"Accept": "text/html"})
    assert page.status_code == 503 and page.mimetype == "text/html"
    assert page.headers["Retry-After"] == "5"
    assert "Try again" in page.get_data(as_text=True)
    app.extensions["connector.engine"].dispose()


def test_a_read_only_database_answers_reads_and_503_for_writes(
    tmp_path: Path, sqlite_template: Path
) -> None:
    path = tmp_path / "connector.sqlite3"
    shutil.copy(sqlite_template, path)
    writable = create_app(base_config(DATABASE_URL=f"sqlite:///{path}"))
    caller = make_caller(writable)
    contact = create_contact(caller)
    writable.extensions["connector.engine"].dispose()

    read_only = create_app(base_config(DATABASE_URL=f"sqlite:///file:{path}?mode=ro&uri=true"))
    caller.client = read_only.test_client()
    assert caller.get(f"/api/v1/contacts/{contact['id']}").status_code == 200
    note = {"body": "Called back", "records": [{"type": "contact", "id": contact["id"]}]}
    response = caller.post("/api/v1/notes", json=note)
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers["Retry-After"] == "5"
    read_only.extensions["connector.engine"].dispose()

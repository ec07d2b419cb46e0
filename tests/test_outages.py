"""Outages: Redis is optional for the records (with it killed, emails log and lookups
answer), and a database that is unreachable or read-only is a 503 with Retry-After.

The Redis here is a process of the test's own, on a free loopback port, never the shared one.
"""

from __future__ import annotations

import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from connector.activities.models import Activity
from connector.app import create_app
from connector.db import make_engine, session_scope, upgrade_schema
from connector.db_deadlines import CONNECT_PAUSE_SECONDS
from connector.orgs import service as orgs
from connector.orgs.service import KEY_PREFIX
from tests.conftest import Caller, base_config
from tests.helpers import create_contact, email_json


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


@pytest.mark.parametrize("fault", ["killed", "hung"])
def test_emails_log_and_lookups_answer_without_redis(app_on_own_redis, own_redis, fault) -> None:
    process, _url = own_redis
    caller = make_caller(app_on_own_redis)
    contact = create_contact(caller)
    records = [{"type": "contact", "id": contact["id"]}]
    lookup = "/api/v1/lookup?email=hank@globex.test"
    assert caller.get(lookup).json["results"][0]["activities"] == []  # now cached

    if fault == "killed":
        process.kill()
        process.wait(timeout=10)
    else:
        # Stopped, as a frozen machine: connections open, no answer (the 2 s timeout).
        process.send_signal(signal.SIGSTOP)

    started = time.monotonic()
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
    # A hung Redis is waited on (2 s) once, then left alone for a while: not per call.
    assert time.monotonic() - started < 2 * 2 + 3
    if fault == "hung":
        process.send_signal(signal.SIGCONT)


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


# A PostgreSQL server of the test's own: hung, read-only, restarted ------------------------

# Short, so that the suite stays quick; production's default is 5 s (the same mechanism).
DB_TIMEOUT = 2.0
# Every request, whatever the database does, answers within this (a few timeouts).
ANSWER_WITHIN = 4 * DB_TIMEOUT + 1


@pytest.fixture
def app_on_own_postgres(own_postgres) -> Iterator[Flask]:
    app = create_app(base_config(DATABASE_URL=own_postgres.url, DB_TIMEOUT_SECONDS=DB_TIMEOUT))
    upgrade_schema(app)
    yield app
    app.extensions["connector.engine"].dispose()


def concurrently(calls: list[Callable[[], Any]]) -> list[tuple[Any, float]]:
    """Each call in a thread of its own, started together: (its answer, seconds taken)."""

    def timed(call: Callable[[], Any]) -> tuple[Any, float]:
        started = time.monotonic()
        answer = call()
        return answer, time.monotonic() - started

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(timed, calls))


def served_again(call: Callable[[], Any]) -> None:
    """Once the database is back, requests are served again within the pause that follows
    a failed connection (503 until then, never anything else)."""

    def served(response: Any) -> bool:
        if response.status_code != 200:
            assert_unavailable(response)
        return bool(response.status_code == 200)

    answer = eventually(call, served, within=CONNECT_PAUSE_SECONDS + 2)
    assert answer.status_code == 200, "not served again after the database came back"


def eventually(call: Callable[[], Any], done: Callable[[Any], bool], within: float = 5) -> Any:
    deadline = time.monotonic() + within
    while not done(answer := call()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return answer


def assert_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers["Retry-After"] == "5"
    assert response.json["code"] == 503


def test_a_hung_database_answers_503_within_seconds(app_on_own_postgres, own_postgres) -> None:
    app = app_on_own_postgres
    caller = make_caller(app)
    contact = create_contact(caller)
    records = [{"type": "contact", "id": contact["id"]}]
    second = email_json(records, message_id="<m2@globex.test>", subject="Second")
    assert caller.post("/api/v1/emails", json=email_json(records)).status_code == 201

    def own(client_caller: Caller) -> Caller:
        return replace(client_caller, client=app.test_client())

    calls: list[Callable[[], Any]] = [
        lambda: own(caller).get(f"/api/v1/contacts/{contact['id']}"),
        lambda: own(caller).post("/api/v1/emails", json=second),
        lambda: own(caller).get("/api/v1/lookup?email=hank@globex.test"),
        lambda: app.test_client().get("/readyz"),
    ]
    with own_postgres.hung():
        answers = concurrently(calls)
        # Once more while still hung: connections are now new ones, which cannot connect.
        answers += concurrently(calls)
    for response, seconds in answers:
        assert_unavailable(response)
        assert seconds < ANSWER_WITHIN, (response.request.path, seconds)
    assert "unreachable" in answers[3][0].json["errors"]["database"]

    # Resumed: the pool replaces what the hang broke, and nothing was half-written.
    served_again(lambda: caller.get(f"/api/v1/contacts/{contact['id']}"))
    logged = caller.post("/api/v1/emails", json=second)
    assert logged.status_code in (200, 201), logged.json
    assert app.test_client().get("/readyz").status_code == 200
    assert (
        len(caller.get("/api/v1/lookup?email=hank@globex.test").json["results"][0]["activities"])
        == 2
    )


@pytest.fixture
def ann_with_a_contact(app_on_own_postgres) -> tuple[Flask, Caller, dict[str, Any]]:
    caller = make_caller(app_on_own_postgres)
    return app_on_own_postgres, caller, create_contact(caller)


def test_a_read_only_database_is_not_ready_and_writes_are_503(
    ann_with_a_contact, own_postgres
) -> None:
    app, caller, contact = ann_with_a_contact
    note = {"body": "Called back", "records": [{"type": "contact", "id": contact["id"]}]}

    own_postgres.set_read_only(True)
    # The server passes a reload on to its backends asynchronously: wait until it has.
    ready = eventually(lambda: app.test_client().get("/readyz"), lambda r: r.status_code == 503)
    assert_unavailable(ready)
    assert ready.json["errors"]["database"] == "refuses writes (read-only)"
    assert caller.get(f"/api/v1/contacts/{contact['id']}").status_code == 200
    assert_unavailable(caller.post("/api/v1/notes", json=note))
    records = [{"type": "contact", "id": contact["id"]}]
    assert_unavailable(caller.post("/api/v1/emails", json=email_json(records)))

    own_postgres.set_read_only(False)
    ready = eventually(lambda: app.test_client().get("/readyz"), lambda r: r.status_code == 200)
    # Ready, and nothing degraded (the body also reports the mail gateway: see test_health).
    assert ready.json["status"] == "ready" and "degraded" not in ready.json
    assert caller.post("/api/v1/notes", json=note).status_code == 201
    assert caller.post("/api/v1/emails", json=email_json(records)).status_code == 201


def test_a_stopped_database_is_503_and_a_restarted_one_serves_at_once(
    ann_with_a_contact, own_postgres
) -> None:
    app, caller, contact = ann_with_a_contact
    own_postgres.stop()
    started = time.monotonic()
    assert_unavailable(caller.get(f"/api/v1/contacts/{contact['id']}"))
    assert_unavailable(app.test_client().get("/readyz"))
    assert time.monotonic() - started < ANSWER_WITHIN
    own_postgres.start()
    # The pooled connections died with the server; the pool's ping replaces them.
    served_again(lambda: caller.get(f"/api/v1/contacts/{contact['id']}"))
    for _ in range(3):
        assert caller.get(f"/api/v1/contacts/{contact['id']}").status_code == 200
    assert app.test_client().get("/readyz").status_code == 200


def test_every_acknowledged_email_is_logged_exactly_once(app_on_own_postgres, own_postgres) -> None:
    """Clients retry until they are answered 2xx, as the add-ins do, while the database
    restarts and hangs under them: each email ends up logged once, none lost or doubled."""
    app = app_on_own_postgres
    caller = make_caller(app)
    contact = create_contact(caller)
    records = [{"type": "contact", "id": contact["id"]}]
    clients = 6
    acknowledged: list[str] = []
    tried: list[str] = []
    outages_seen: list[int] = []
    outages_over = threading.Event()
    logging_started = threading.Barrier(clients + 1)

    def log_emails(number: int) -> None:
        own = replace(caller, client=app.test_client())
        index = 0
        # Logging goes on until the outages are over, so that they happen under load.
        while index < 3 or not outages_over.is_set():
            message_id = f"<c{number}-{index}@globex.test>"
            tried.append(message_id)
            body = email_json(records, message_id=message_id, subject=f"Mail {number}/{index}")
            for _attempt in range(100):
                response = own.post("/api/v1/emails", json=body)
                if response.status_code in (200, 201):
                    acknowledged.append(message_id)
                    break
                assert response.status_code == 503, response.get_data(as_text=True)
                outages_seen.append(503)
                time.sleep(0.2)
            else:
                pytest.fail(f"{message_id} was never acknowledged")
            index += 1
            if index == 2:
                logging_started.wait(timeout=60)

    with ThreadPoolExecutor(clients) as pool:
        running = [pool.submit(log_emails, n) for n in range(clients)]
        logging_started.wait(timeout=60)
        own_postgres.restart()
        time.sleep(0.3)
        with own_postgres.hung():
            time.sleep(DB_TIMEOUT + 1)
        time.sleep(0.3)
        outages_over.set()
        for future in running:
            future.result()

    assert outages_seen, "the database's outages were not felt: the test proved nothing"
    assert sorted(acknowledged) == sorted(tried)
    with session_scope(app) as session:
        counts = dict(
            session.execute(
                sa.select(Activity.message_id, sa.func.count()).group_by(Activity.message_id)
            ).all()
        )
    assert set(counts) == set(acknowledged)
    assert set(counts.values()) == {1}


def test_the_url_s_own_options_are_kept_beside_the_statement_timeout() -> None:
    engine = make_engine(
        "postgresql+psycopg://u@127.0.0.1:1/x?options=-csearch_path%3Dcrm&connect_timeout=9", 5
    )
    asked: dict[str, Any] = {}

    class Captured(Exception):
        pass

    @sa.event.listens_for(engine, "do_connect")
    def capture(_dialect, _record, _cargs, cparams) -> None:
        asked.update(cparams)
        raise Captured

    with pytest.raises(Captured):
        engine.connect()
    assert asked["options"] == "-csearch_path=crm -c statement_timeout=5000"
    assert asked["connect_timeout"] == "9"

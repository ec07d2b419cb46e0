from __future__ import annotations

import datetime as dt
import shutil

import sqlalchemy as sa

from connector.app import create_app
from connector.db import session_scope
from connector.jobs.tasks import record_heartbeat, worker_heartbeat
from connector.mail.models import Heartbeat, InboundMessage, InboundStatus, OutboundMail
from connector.orgs import service as orgs
from connector.orm import utcnow
from tests.conftest import base_config


def test_healthz(client) -> None:
    assert client.get("/healthz").json == {"status": "ok"}


NOTHING_WAITS = {
    "inbound": {"received": 0, "held": 0, "failed": 0},
    "outbound": {"queued": 0, "failed": 0},
}


def test_readyz(client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    # The mail gateway and the worker are reported, never a reason to be unready.
    assert response.json == {
        "status": "ready",
        "mail": {"gateway": "not seen", "worker": "not seen", **NOTHING_WAITS},
    }


def test_readyz_reports_the_gateway_the_worker_and_the_mail_that_waits(app, client) -> None:
    worker_heartbeat(app)  # what the worker runs every minute
    with session_scope(app) as session:
        record_heartbeat(session, "mail-gateway", {"host": "mx", "port": 2525})
        org = orgs.get_or_create_org(session, "Acme")
        for status in ("received", "received", "held", "failed", "done"):
            session.add(
                InboundMessage(
                    organization_id=org.id,
                    source="smtp",
                    raw=b"Subject: x\r\n\r\nx\r\n",
                    status=InboundStatus(status),
                )
            )
        session.add(
            OutboundMail(
                organization_id=org.id,
                kind="acknowledgment",
                from_address="sales@acme.test",
                message_id="<a@acme.test>",
                raw=b"",
                status="failed",
            )
        )
    mail = client.get("/readyz").json["mail"]
    assert mail["gateway"].startswith("up, seen ") and mail["gateway"].endswith(" s ago")
    assert mail["worker"].startswith("up, seen ")
    assert mail["inbound"] == {"received": 2, "held": 1, "failed": 1}
    assert mail["outbound"] == {"queued": 0, "failed": 1}

    # A gateway that stopped beating is down, and the service still ready.
    with session_scope(app) as session:
        session.get(Heartbeat, "mail-gateway").seen_at = utcnow() - dt.timedelta(hours=3)
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["mail"]["gateway"] == "down, last seen 3 h ago"


def test_readyz_is_ready_when_the_mail_tables_cannot_be_read(sqlite_template, tmp_path) -> None:
    # A database of its own (the PostgreSQL one is shared by the session's tests).
    path = tmp_path / "connector.sqlite3"
    shutil.copy(sqlite_template, path)
    app = create_app(base_config(DATABASE_URL=f"sqlite:///{path}"))
    with app.extensions["connector.engine"].begin() as connection:
        connection.execute(sa.text("DROP TABLE heartbeats"))
    response = app.test_client().get("/readyz")
    app.extensions["connector.engine"].dispose()
    assert response.status_code == 200
    assert response.json["status"] == "ready"
    assert response.json["mail"]["unknown"].startswith("not read: ")


def test_readyz_says_what_is_unreachable(tmp_path) -> None:
    app = create_app(
        base_config(
            DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/none",
            REDIS_URL="redis://127.0.0.1:1/0",
        )
    )
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert set(response.json["errors"]) == {"database", "store"}
    assert response.json["code"] == 503


def test_unexpected_errors_are_json_without_details(app) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False

    # Under the API; a browser route answers with an HTML page (test_browser_security).
    @app.get("/api/v1/boom")
    def boom() -> str:
        raise RuntimeError("secret internals")

    response = app.test_client().get("/api/v1/boom")
    assert response.status_code == 500
    assert response.json["code"] == 500
    assert "secret internals" not in response.get_data(as_text=True)

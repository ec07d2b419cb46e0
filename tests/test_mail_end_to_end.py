"""End to end: mail through a real `connector mail-gateway` to a real `connector worker`, which
routes it (connector.jobs.inbound.route_inbound) onto records.

MERGE FIRST: these need the routing of issue 17 (route_inbound marks the row "done" and fills
outcome, record_type and record_id; the worker's sweep queues rows still "received"). With
route_inbound still a placeholder they wait in vain and fail: run them once the gateway and
routing branches are merged: `.venv/bin/pytest -n 2 tests/test_mail_end_to_end.py`.
"""

from __future__ import annotations

import signal
import time
from email.message import EmailMessage

import pytest
import sqlalchemy as sa
from flask import Flask

from connector.activities.models import Activity, ActivityKind, ActivityLink
from connector.db import session_scope
from connector.mail.models import Heartbeat, InboundMessage, InboundStatus
from connector.orgs import service as orgs
from connector.records.models import Contact, ContactEmail, Lead, RecordType
from tests import gateway_fixtures
from tests.gateway_fixtures import DOMAIN, message, smtp, wait_for

gateway = gateway_fixtures.gateway
mail_org = gateway_fixtures.mail_org

SENDER = "hank@customer.test"
# Routing "within seconds": the worker polls SQLite every 2 s at most; this is a bound.
ROUTED_WITHIN = 60


def inbound(app: Flask, inbound_id: int) -> InboundMessage:
    with session_scope(app) as session:
        row = session.get(InboundMessage, inbound_id)
        assert row is not None
        session.expunge(row)
        return row


def send(port: int, mail: EmailMessage) -> int:
    """Send through the gateway; the id of the row its 250 names."""
    with smtp(port) as client:
        client.mail(SENDER)
        assert client.rcpt(f"sales@{DOMAIN}")[0] == 250
        code, reply = client.data(mail.as_bytes())
    assert code == 250, reply
    return int(reply.decode().rpartition(" ")[2])


def done(app: Flask, inbound_id: int) -> bool:
    return inbound(app, inbound_id).status == InboundStatus.DONE


def leads(app: Flask) -> list[Lead]:
    with session_scope(app) as session:
        found = list(session.scalars(sa.select(Lead).order_by(Lead.id)))
        session.expunge_all()
        return found


def emails_on(app: Flask, record_type: RecordType, record_id: int) -> list[str]:
    """The Message-IDs of the customer's emails logged on a record (sales@ acknowledges, and
    its acknowledgment, at our own domain, is logged on the record too)."""
    with session_scope(app) as session:
        return list(
            session.scalars(
                sa.select(Activity.message_id)
                .join(ActivityLink, ActivityLink.activity_id == Activity.id)
                .where(
                    Activity.kind == ActivityKind.EMAIL,
                    ActivityLink.record_type == record_type,
                    ActivityLink.record_id == record_id,
                    Activity.message_id.not_like(f"%@{DOMAIN}>"),
                )
                .order_by(Activity.id)
            )
        )


def sender_card(app: Flask, client, user_email: str) -> dict:
    """The lookup the add-ins make for the sender, as the team's user."""
    with session_scope(app) as session:
        key = orgs.issue_key(session, orgs.find_user(session, user_email), "test")
    answer = client.get(
        f"/api/v1/lookup?email={SENDER}", headers={"Authorization": f"Bearer {key}"}
    )
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["results"][0]


def test_mail_to_sales_opens_a_lead_and_the_follow_up_lands_on_it(
    queue_app, client, gateway, worker, mail_org
) -> None:
    running = gateway(queue_app)
    worker()
    # Looked up (and so cached by the web server) before the mail comes: a stranger.
    assert sender_card(queue_app, client, mail_org.user_email)["contact"] is None
    first = message(subject="Quote for 50 seats")
    first_id = send(running.port, first)
    wait_for(lambda: done(queue_app, first_id), "the worker to route the message", ROUTED_WITHIN)

    row = inbound(queue_app, first_id)
    assert (row.outcome, row.record_type) == ("created", RecordType.LEAD)
    (lead,) = leads(queue_app)
    assert (lead.id, lead.title) == (row.record_id, "Quote for 50 seats")
    # On the sender's card: the lead is the contact's, found or created from the sender.
    with session_scope(queue_app) as session:
        contact = session.scalar(
            sa.select(Contact).join(ContactEmail).where(ContactEmail.email == SENDER)
        )
        assert contact is not None and lead.contact_id == contact.id
    assert emails_on(queue_app, RecordType.LEAD, lead.id) == [first["Message-ID"]]
    # On the sender's card at once: the worker's write moved the cached lookup's generation
    # where the web server reads it (Redis, or the database when there is none).
    card = sender_card(queue_app, client, mail_org.user_email)
    assert card["contact"]["id"] == contact.id
    assert [found["id"] for found in card["leads"]] == [lead.id]
    assert [(m["subject"], m["outcome"]) for m in card["inbound"]] == [
        ("Quote for 50 seats", "created")
    ]

    # The customer's answer names their first message: the same lead, no new one.
    follow_up = message(
        subject="Re: Quote for 50 seats",
        body="And 10 more seats, please.\n",
        In_Reply_To=first["Message-ID"],
        References=first["Message-ID"],
    )
    follow_up_id = send(running.port, follow_up)
    wait_for(lambda: done(queue_app, follow_up_id), "the follow-up to be routed", ROUTED_WITHIN)
    row = inbound(queue_app, follow_up_id)
    assert (row.outcome, row.record_type, row.record_id) == ("appended", RecordType.LEAD, lead.id)
    assert [found.id for found in leads(queue_app)] == [lead.id]
    assert emails_on(queue_app, RecordType.LEAD, lead.id) == [
        first["Message-ID"],
        follow_up["Message-ID"],
    ]


# It holds a table lock, PostgreSQL's (SQLite has no table locks to hold the job with).
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_no_message_accepted_is_lost_when_the_worker_is_killed_mid_job(
    backend, queue_app, gateway, worker, mail_org
) -> None:
    running = gateway(queue_app)
    killed = worker()
    wait_for(lambda: _worker_seen(queue_app), "the worker to start")

    engine = queue_app.extensions["connector.engine"]
    blocker = engine.connect()
    try:
        # Whatever routing does, creating the lead must wait for this lock.
        transaction = blocker.begin()
        blocker.exec_driver_sql("SET LOCAL statement_timeout = 0")
        blocker.exec_driver_sql("LOCK TABLE leads IN ACCESS EXCLUSIVE MODE")
        inbound_id = send(running.port, message(subject="Killed mid-job"))
        # The worker has the job (the row's attempts counted), or has had it for a while.
        deadline = time.monotonic() + 3
        while inbound(queue_app, inbound_id).attempts < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=10)
        assert inbound(queue_app, inbound_id).status == InboundStatus.RECEIVED
        transaction.rollback()
    finally:
        blocker.close()

    # A new worker takes up what the killed one left (its sweep of rows still "received").
    worker()
    wait_for(lambda: done(queue_app, inbound_id), "the new worker to route it", ROUTED_WITHIN)
    row = inbound(queue_app, inbound_id)
    (lead,) = leads(queue_app)
    assert (row.outcome, row.record_type, row.record_id) == ("created", RecordType.LEAD, lead.id)
    assert lead.title == "Killed mid-job"
    # Routed once: one email logged, however many times the job was started.
    assert len(emails_on(queue_app, RecordType.LEAD, lead.id)) == 1


def _worker_seen(app: Flask) -> bool:
    with session_scope(app) as session:
        return session.get(Heartbeat, "worker") is not None


def test_a_held_message_released_is_routed_without_the_cap(
    queue_app, runner, gateway, worker, mail_org
) -> None:
    # The sender opened as many records as the cap allows (20 within 120 minutes) lately.
    with session_scope(queue_app) as session:
        for n in range(queue_app.config["MAIL_SENDER_CAP"]):
            session.add(
                InboundMessage(
                    organization_id=mail_org.org_id,
                    source="smtp",
                    raw=b"",
                    sender=SENDER,
                    status=InboundStatus.DONE,
                    outcome="created",
                    message_id=f"<earlier-{n}@customer.test>",
                )
            )
    running = gateway(queue_app)
    worker()
    inbound_id = send(running.port, message(subject="One more"))
    wait_for(
        lambda: inbound(queue_app, inbound_id).status == InboundStatus.HELD,
        "the message to be held",
        ROUTED_WITHIN,
    )
    assert leads(queue_app) == []

    result = runner.invoke(args=["mail", "held", "--release", f"in:{inbound_id}"])
    assert result.output.strip() == f"Released: in:{inbound_id}.", result.output
    wait_for(lambda: done(queue_app, inbound_id), "the released message routed", ROUTED_WITHIN)
    row = inbound(queue_app, inbound_id)
    (lead,) = leads(queue_app)
    assert (row.outcome, row.record_id, lead.title) == ("created", lead.id, "One more")

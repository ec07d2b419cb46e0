"""Routing received mail (connector.mail.routing, the route_inbound job): on the real
database of both backends, with real messages as the gateway stores them."""

from __future__ import annotations

import datetime as dt
import threading
from email import policy
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from connector.activities.models import Activity, ActivityLink
from connector.db import session_scope
from connector.jobs import get_jobs, inbound
from connector.jobs.engine import RETRIES
from connector.jobs.inbound import MAX_ATTEMPTS, requeue_stuck, route_inbound, routing_config
from connector.mail import aliases
from connector.mail.models import InboundMessage, InboundStatus, OutboundMail
from connector.mail.reply_addresses import reply_address
from connector.mail.routing import route_message
from connector.orgs import service as orgs
from connector.orgs.context import Ctx
from connector.orgs.models import Organization, Role, User
from connector.records import service as records
from connector.records.models import (
    Company,
    Contact,
    ContactEmail,
    Lead,
    RecordChange,
    RecordType,
    Task,
    Ticket,
    TicketStatus,
)
from connector.records.refs import RecordRef
from connector.store import get_store
from tests.test_jobs import wait_for

DOMAIN = "acme.test"
BOUNCES = Path(__file__).parent / "data" / "bounces"


@pytest.fixture
def org(app: Flask) -> int:
    """Acme, at acme.test: ann (admin, owner of the aliases), sales@ (leads), support@
    (tickets, acknowledged), tasks@ (tasks), vip@ (known contacts only), team@ (users only)."""
    free_mail = app.extensions["connector.settings"].free_mail
    with session_scope(app) as session:
        organization = orgs.get_or_create_org(session, "Acme")
        ann = orgs.create_user(session, organization, "ann@acme.test", "Ann", Role.ADMIN)
        aliases.set_mail_domain(session, organization, DOMAIN, free_mail)
        aliases.create_alias(
            session, organization, address="sales@acme.test", creates="lead", owner=ann
        )
        aliases.create_alias(
            session,
            organization,
            address="support@acme.test",
            creates="ticket",
            owner=ann,
            auto_reply=True,
        )
        aliases.create_alias(
            session, organization, address="tasks@acme.test", creates="task", owner=ann
        )
        aliases.create_alias(
            session, organization, address="vip@acme.test", creates="lead", accept="contacts"
        )
        aliases.create_alias(
            session, organization, address="team@acme.test", creates="lead", accept="users"
        )
        return organization.id


def message(
    subject: str = "Quote for 40 chairs",
    sender: str = "Bea Customer <bea@globex.test>",
    to: str = "sales@acme.test",
    body: str = "Hello, could you send us a quote?",
    **headers: str,
) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail["Message-ID"] = make_msgid(domain="globex.test")
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(body)
    return mail


def store(
    app: Flask,
    org_id: int,
    mail: EmailMessage | bytes,
    recipients: list[str] | None = None,
    envelope_from: str = "bea@globex.test",
) -> int:
    """The row as the gateway stores it after its 250."""
    raw = mail if isinstance(mail, bytes) else mail.as_bytes()
    if recipients is None:
        recipients = [str(mail["To"])] if isinstance(mail, EmailMessage) else []
    with session_scope(app) as session:
        row = InboundMessage(
            organization_id=org_id,
            source="smtp",
            envelope_from=envelope_from,
            recipients=recipients,
            raw=raw,
            size=len(raw),
        )
        session.add(row)
        session.flush()
        return row.id


def route(app: Flask, org_id: int, mail: EmailMessage | bytes, **kwargs) -> InboundMessage:
    inbound_id = store(app, org_id, mail, **kwargs)
    route_inbound(app, inbound_id=inbound_id)
    return row(app, inbound_id)


def row(app: Flask, inbound_id: int) -> InboundMessage:
    with session_scope(app) as session:
        found = session.get(InboundMessage, inbound_id)
        assert found is not None
        session.expunge(found)
        return found


def count(app: Flask, model: type) -> int:
    with session_scope(app) as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


def acknowledgments(app: Flask) -> int:
    """The acknowledgments queued (relays to the record's followers are mail of ours too)."""
    with session_scope(app) as session:
        return int(
            session.scalar(
                sa.select(sa.func.count())
                .select_from(OutboundMail)
                .where(OutboundMail.kind == "acknowledgment")
            )
            or 0
        )


def links_of(app: Flask, activity_id: int) -> set[RecordRef]:
    with session_scope(app) as session:
        return {
            RecordRef(link.record_type, link.record_id)
            for link in session.scalars(
                sa.select(ActivityLink).where(ActivityLink.activity_id == activity_id)
            )
        }


def contact_id(app: Flask, address: str) -> int | None:
    with session_scope(app) as session:
        return session.scalar(
            sa.select(ContactEmail.contact_id).where(ContactEmail.email == address)
        )


# Creating ----------------------------------------------------------------------------------


def test_mail_to_sales_opens_a_lead_on_the_senders_new_contact(app, org) -> None:
    with session_scope(app) as session:
        ann = session.scalar(sa.select(User).where(User.email == "ann@acme.test"))
        ctx = Ctx(session, ann, get_store(app), app.extensions["connector.settings"])
        globex = records.create_company(ctx, name="Globex", domains=["globex.test"]).id
    routed = route(app, org, message())
    assert routed.status == InboundStatus.DONE and routed.outcome == "created"
    assert routed.sender == "bea@globex.test"
    assert routed.subject == "Quote for 40 chairs"
    assert routed.record_type == RecordType.LEAD and routed.attempts == 1
    assert routed.processed_at is not None and routed.alias_id is not None
    with session_scope(app) as session:
        lead = session.get(Lead, routed.record_id)
        ann = session.scalar(sa.select(User).where(User.email == "ann@acme.test"))
        assert lead.title == "Quote for 40 chairs"
        assert lead.owner_id == ann.id
        assert lead.contact is not None and lead.contact.name == "Bea Customer"
        # The company of the sender's domain.
        assert lead.company is not None and lead.company.id == globex
        contact = lead.contact.id
    bea = RecordRef(RecordType.CONTACT, contact)
    assert links_of(app, routed.activity_id) == {RecordRef(RecordType.LEAD, routed.record_id), bea}


def test_a_stranger_brings_their_company_in_by_domain_unless_free_mail(app, org) -> None:
    routed = route(app, org, message(sender="Cy Initech <cy@initech.test>"))
    with session_scope(app) as session:
        lead = session.get(Lead, routed.record_id)
        assert lead.company is not None and lead.company.name == "Initech"
        assert [d.domain for d in lead.company.domains] == ["initech.test"]
        assert lead.contact is not None and lead.contact.company_id == lead.company.id
    again = route(app, org, message("Another one", sender="Di Initech <di@initech.test>"))
    with session_scope(app) as session:
        # The second person of the domain joins the same company.
        assert session.get(Lead, again.record_id).company_id == lead.company.id
    free = route(app, org, message("Hi", sender="Ed <ed.someone@gmail.com>"))
    with session_scope(app) as session:
        assert session.get(Lead, free.record_id).company is None
        assert count(app, Company) == 1


def test_follow_up_with_in_reply_to_lands_on_the_same_lead(app, org) -> None:
    first_mail = message()
    first = route(app, org, first_mail)
    follow_up = message(
        "Re: Quote for 40 chairs",
        body="And 10 tables, please.",
        In_Reply_To=str(first_mail["Message-ID"]),
        References=str(first_mail["Message-ID"]),
    )
    second = route(app, org, follow_up)
    assert second.outcome == "appended"
    assert (second.record_type, second.record_id) == (RecordType.LEAD, first.record_id)
    assert count(app, Lead) == 1
    assert RecordRef(RecordType.LEAD, first.record_id) in links_of(app, second.activity_id)


def test_the_same_message_delivered_twice_opens_one_lead(app, org) -> None:
    mail = message()
    first = route(app, org, mail)
    again = route(app, org, mail)
    assert again.outcome == "appended" and again.record_id == first.record_id
    assert count(app, Lead) == 1 and count(app, Activity) == 1


def test_a_reply_address_finds_its_record(app, org) -> None:
    first = route(app, org, message())
    lead = RecordRef(RecordType.LEAD, first.record_id)
    address = reply_address(app.config["SECRET_KEY"], org, DOMAIN, lead)
    answer = route(app, org, message("Re: your quote", to=address))
    assert answer.outcome == "appended"
    assert (answer.record_type, answer.record_id) == (RecordType.LEAD, lead.id)
    # A forged one (another signature) opens nothing on that lead: refused, no alias.
    forged = address.split("-")[0] + "-aaaaaaaaaaaaaaaa@" + DOMAIN
    refused = route(app, org, message("Re: your quote", to=forged))
    assert refused.outcome == "refused" and count(app, Lead) == 1


def test_a_subject_number_threads_only_for_participants(app, org) -> None:
    first = route(app, org, message("Printer on fire", to="support@acme.test"))
    tag = f"[#T-{first.record_id}]"
    by_bea = route(app, org, message(f"Re: Printer on fire {tag}", to="support@acme.test"))
    assert by_bea.outcome == "appended" and by_bea.record_id == first.record_id
    stranger = route(
        app,
        org,
        message(
            f"Re: Printer on fire {tag}",
            sender="Mallory <mallory@evil.test>",
            to="support@acme.test",
        ),
    )
    assert stranger.outcome == "created" and stranger.record_id != first.record_id
    assert count(app, Ticket) == 2


def test_a_customers_reply_reopens_a_resolved_ticket(app, org) -> None:
    first_mail = message("Printer on fire", to="support@acme.test")
    first = route(app, org, first_mail)
    with session_scope(app) as session:
        ticket = session.get(Ticket, first.record_id)
        ticket.status = TicketStatus.RESOLVED
    reply = message(
        "Re: Printer on fire", to="support@acme.test", In_Reply_To=str(first_mail["Message-ID"])
    )
    again = route(app, org, reply)
    assert again.outcome == "appended" and again.record_id == first.record_id
    with session_scope(app) as session:
        assert session.get(Ticket, first.record_id).status == TicketStatus.OPEN
        change = session.scalar(
            sa.select(RecordChange).where(
                RecordChange.record_type == RecordType.TICKET,
                RecordChange.record_id == first.record_id,
                RecordChange.field == "status",
            )
        )
        assert change is not None and (change.from_value, change.to_value) == ("resolved", "open")


def test_tasks_alias_opens_a_task_for_the_owner_about_the_sender(app, org) -> None:
    routed = route(app, org, message("Call me back", to="tasks@acme.test"))
    assert routed.outcome == "created" and routed.record_type == RecordType.CONTACT
    with session_scope(app) as session:
        task = session.scalar(sa.select(Task))
        ann = session.scalar(sa.select(User).where(User.email == "ann@acme.test"))
        assert task.title == "Call me back" and task.assignee_id == ann.id
        assert (task.record_type, task.record_id) == (RecordType.CONTACT, routed.record_id)
    assert links_of(app, routed.activity_id) == {RecordRef(RecordType.CONTACT, routed.record_id)}


def test_accept_contacts_and_users(app, org) -> None:
    stranger = route(app, org, message(to="vip@acme.test"))
    assert stranger.outcome == "refused" and stranger.status == InboundStatus.DONE
    assert count(app, Lead) == 0 and count(app, Activity) == 0 and count(app, Contact) == 0
    route(app, org, message("First", to="sales@acme.test"))  # now bea is a contact
    known = route(app, org, message("Second", to="vip@acme.test"))
    assert known.outcome == "created"
    assert route(app, org, message(to="team@acme.test")).outcome == "refused"
    colleague = route(
        app,
        org,
        message(sender="Ann <ann@acme.test>", to="team@acme.test"),
        envelope_from="ann@acme.test",
    )
    assert colleague.outcome == "created"


def test_no_active_owner_routes_as_the_oldest_admin(app, org) -> None:
    with session_scope(app) as session:
        organization = session.get(Organization, org)
        ann = session.scalar(sa.select(User).where(User.email == "ann@acme.test"))
        orgs.create_user(session, organization, "zed@acme.test", "Zed", Role.ADMIN)
        orgs.deactivate_user(session, ann)
    routed = route(app, org, message())
    with session_scope(app) as session:
        zed = session.scalar(sa.select(User).where(User.email == "zed@acme.test"))
        assert session.get(Lead, routed.record_id).owner_id == zed.id


def test_an_org_without_active_users_fails_the_message_with_why(app, org) -> None:
    with session_scope(app) as session:
        orgs.deactivate_user(
            session, session.scalar(sa.select(User).where(User.email == "ann@acme.test"))
        )
    routed = route(app, org, message())
    assert routed.status == InboundStatus.FAILED and "no active user" in (routed.error or "")
    assert count(app, Lead) == 0


# Bounces, loops, the cap ---------------------------------------------------------------------


def test_a_bounce_opens_nothing_and_marks_the_address(app, org) -> None:
    route(app, org, message())  # bea is a contact now
    raw = (BOUNCES / "postfix_02.eml").read_bytes()
    failed = "bea@globex.test"
    # The sample's failed recipient, made one of Acme's contacts' addresses.
    with session_scope(app) as session:
        from email import message_from_bytes

        from connector.mail.bounces import read_bounce

        sample = read_bounce(message_from_bytes(raw))
        assert sample is not None and sample.failed
        original = sample.failed[0]
    raw = raw.replace(original.encode(), failed.encode())
    # Anyone can send a "failure notice" naming any address: about an address we sent
    # nothing to, it opens nothing and marks nothing.
    forged = route(app, org, raw, recipients=["sales@acme.test"], envelope_from="")
    assert forged.outcome == "bounce"
    with session_scope(app) as session:
        email = session.scalar(sa.select(ContactEmail).where(ContactEmail.email == failed))
        assert email.bounced_at is None
    # support@ acknowledges bea: mail of ours went to her; a bounce about her now counts.
    route(app, org, message("Broken chair", to="support@acme.test"))
    assert acknowledgments(app) == 1
    leads_before, activities_before = count(app, Lead), count(app, Activity)
    raw = raw.replace(b"Message-Id: <", b"Message-Id: <again.", 1).replace(
        b"Message-ID: <", b"Message-ID: <again.", 1
    )
    bounced = route(app, org, raw, recipients=["sales@acme.test"], envelope_from="")
    assert bounced.outcome == "bounce" and bounced.status == InboundStatus.DONE
    assert count(app, Lead) == leads_before and count(app, Activity) == activities_before
    with session_scope(app) as session:
        email = session.scalar(sa.select(ContactEmail).where(ContactEmail.email == failed))
        assert email.bounced_at is not None and email.bounce_reason
    # Mail from the address again shows it works: the mark goes.
    route(app, org, message("Back again"))
    with session_scope(app) as session:
        email = session.scalar(sa.select(ContactEmail).where(ContactEmail.email == failed))
        assert email.bounced_at is None


def test_an_acknowledgment_that_cannot_be_made_costs_only_the_acknowledgment(
    app, org, caplog
) -> None:
    """A sender whose address our mail cannot carry (RFC 6532: UTF-8 in the local part)
    still gets the ticket; only the acknowledgment is left out."""
    mail = message("Bestellung", sender="Jörg <jörg@bücher.example>", to="support@acme.test")
    raw = mail.as_bytes(policy=policy.SMTPUTF8)
    routed = route(
        app, org, raw, recipients=["support@acme.test"], envelope_from="jörg@bücher.example"
    )
    assert (routed.status, routed.outcome) == (InboundStatus.DONE, "created")
    assert routed.record_type == RecordType.TICKET
    assert acknowledgments(app) == 0
    assert "No acknowledgment for inbound message" in caplog.text


def test_auto_replies_and_our_own_mail_open_nothing(app, org) -> None:
    ooo = route(app, org, message("Out of office", Auto_Submitted="auto-replied"))
    assert ooo.outcome == "loop"
    ours = route(
        app, org, message(sender="Support <support@acme.test>"), envelope_from="support@acme.test"
    )
    assert ours.outcome == "loop"
    assert count(app, Lead) == 0


def test_polled_mail_without_an_envelope_goes_by_its_headers(app, org) -> None:
    """An IMAP message has no envelope: its To names the alias, Return-Path the sender."""
    mail = message("Web form: call back", Auto_Submitted="auto-generated")
    mail["Return-Path"] = "<forms@globex.test>"
    with session_scope(app) as session:
        raw = mail.as_bytes()
        polled = InboundMessage(
            organization_id=org, source="imap", recipients=[], raw=raw, size=len(raw)
        )
        session.add(polled)
        session.flush()
        inbound_id = polled.id
    route_inbound(app, inbound_id=inbound_id)
    routed = row(app, inbound_id)
    # A machine's notice (auto-generated, not an auto-reply) still opens a lead.
    assert routed.outcome == "created" and routed.record_type == RecordType.LEAD


def test_forty_messages_from_one_sender_open_no_more_than_the_cap(app, org) -> None:
    cap = app.config["MAIL_SENDER_CAP"]
    rows = [route(app, org, message(f"Offer {n}")) for n in range(40)]
    created = [r for r in rows if r.outcome == "created"]
    held = [r for r in rows if r.outcome == "held"]
    assert len(created) == cap and len(held) == 40 - cap
    assert all(r.status == InboundStatus.HELD for r in held)
    assert count(app, Lead) == cap
    # Another sender is not held back by bea; and bea's replies to her threads still land.
    other = route(
        app, org, message(sender="Carl <carl@initech.test>"), envelope_from="carl@initech.test"
    )
    assert other.outcome == "created"
    first = rows[0]
    with session_scope(app) as session:
        first_id = session.get(InboundMessage, first.id).message_id
    reply = route(app, org, message("Re: Offer 0", In_Reply_To=first_id))
    assert reply.outcome == "appended"


# Once, and all or nothing ------------------------------------------------------------------------


def test_running_the_job_twice_routes_once(app, org) -> None:
    inbound_id = store(app, org, message())
    route_inbound(app, inbound_id=inbound_id)
    route_inbound(app, inbound_id=inbound_id)
    assert count(app, Lead) == 1
    assert row(app, inbound_id).attempts == 1


def test_two_concurrent_jobs_route_it_once(app, org) -> None:
    """Two workers given the same message at once: one routes it; the other waits for the
    row's lock (PostgreSQL) or loses the conditional update or SQLite's write lock, and
    rolls back (an error there makes Huey try again, and the next try finds it routed)."""
    inbound_id = store(app, org, message())
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        start.wait()
        try:
            route_inbound(app, inbound_id=inbound_id)
        except sa.exc.OperationalError as error:
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(errors) <= 1
    route_inbound(app, inbound_id=inbound_id)  # the retry of a loser: nothing more to do
    assert row(app, inbound_id).outcome == "created"
    assert count(app, Lead) == 1 and count(app, Activity) == 1 and count(app, Contact) == 1


def test_a_transaction_that_does_not_commit_leaves_the_message_received(app, org) -> None:
    """What a worker killed mid-job leaves: everything routing wrote goes with the
    transaction, the row stays `received`, and the next run routes it whole."""
    inbound_id = store(app, org, message())
    session = app.extensions["connector.sessionmaker"]()
    try:
        routed = route_message(session, inbound_id, routing_config(app))
        assert routed is not None and routed.outcome == "created"
        assert session.scalar(sa.select(sa.func.count()).select_from(Lead)) == 1
    finally:
        session.rollback()
        session.close()
    assert row(app, inbound_id).status == InboundStatus.RECEIVED
    assert count(app, Lead) == 0 and count(app, Contact) == 0 and count(app, Activity) == 0
    route_inbound(app, inbound_id=inbound_id)
    assert row(app, inbound_id).outcome == "created" and count(app, Lead) == 1


def test_a_message_whose_runs_keep_dying_ends_failed(app, org) -> None:
    assert MAX_ATTEMPTS == RETRIES + 1
    inbound_id = store(app, org, message())
    with session_scope(app) as session:
        session.get(InboundMessage, inbound_id).attempts = MAX_ATTEMPTS
    route_inbound(app, inbound_id=inbound_id)
    failed = row(app, inbound_id)
    assert failed.status == InboundStatus.FAILED and "gave up" in (failed.error or "")
    assert count(app, Lead) == 0


def test_requeue_stuck_queues_what_is_left_received(queue_app, org, monkeypatch) -> None:
    # As in a worker that just started: this process has not called it yet.
    monkeypatch.setattr(inbound, "_requeued", inbound._Requeued())
    inbound_id = store(queue_app, org, message())
    jobs = get_jobs(queue_app)
    before = jobs.pending()
    requeue_stuck(queue_app)  # the first call in a process: every received message
    assert jobs.pending() >= before + 1
    with session_scope(queue_app) as session:
        session.get(InboundMessage, inbound_id).received_at -= dt.timedelta(minutes=1)
    queued = jobs.pending()
    requeue_stuck(queue_app)  # received a minute ago: its job may still be on its way
    assert jobs.pending() == queued


def test_a_real_worker_routes_a_queued_message(queue_app, org, worker) -> None:
    inbound_id = store(queue_app, org, message("From the queue"))
    get_jobs(queue_app).enqueue("route_inbound", inbound_id=inbound_id)
    worker()
    wait_for(
        lambda: row(queue_app, inbound_id).status == InboundStatus.DONE, "the worker to route it"
    )
    routed = row(queue_app, inbound_id)
    assert routed.outcome == "created" and routed.record_type == RecordType.LEAD
    with session_scope(queue_app) as session:
        assert session.get(Lead, routed.record_id).title == "From the queue"

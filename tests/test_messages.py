"""Messages written from a record (issue 18, items 2 and 4): through the API, sent through a
real SMTP server (aiosmtpd) with a DKIM signature checked by dkimpy, the customer's reply
routed back onto the record and relayed to its followers, failures and bounces shown."""

from __future__ import annotations

from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import dkim as dkimpy
import pytest
import sqlalchemy as sa
from flask import Flask

from connector.activities.models import Activity, ActivityLink
from connector.db import session_scope
from connector.email_templates.service import create_template
from connector.jobs.inbound import route_inbound
from connector.jobs.outbound import send_outbound
from connector.mail import aliases, followers
from connector.mail.models import Follower, InboundMessage, OutboundMail
from connector.mail.reply_addresses import record_of_reply_address
from connector.mail.unfollow_links import follower_of_token
from connector.orgs import service as orgs
from connector.orgs.context import Ctx
from connector.orgs.models import Organization, Role, User
from connector.records import service as records
from connector.records.models import ContactEmail, Lead, RecordType
from connector.records.refs import RecordRef
from connector.store import get_store
from tests.smtp_fixtures import rsa_key_pem, smtp_server
from tests.test_mail_routing import BOUNCES, store

DOMAIN = "acme.test"
CUSTOMER = "carol@customer.test"


@dataclass
class Acme:
    lead_id: int
    contact_id: int
    bob_id: int


def ctx_for(app: Flask, session: Any, user_id: int) -> Ctx:
    user = session.get(User, user_id)
    return Ctx(session, user, get_store(app), app.extensions["connector.settings"])


def set_up(app: Flask, caller: Any, *, domain: bool = True, alias: bool = True) -> Acme:
    """The caller's organization at acme.test with sales@ (unless told otherwise), Carol the
    customer, her lead (the caller's), and Bob, a colleague who follows the lead."""
    with session_scope(app) as session:
        org = session.get(Organization, caller.org_id)
        ctx = ctx_for(app, session, caller.user_id)
        if domain:
            aliases.set_mail_domain(session, org, DOMAIN, ctx.settings.free_mail)
        if alias:
            aliases.create_alias(
                session, org, address=f"sales@{DOMAIN}", creates="lead", owner=ctx.user
            )
        contact = records.create_contact(ctx, name="Carol Customer", emails=[CUSTOMER])
        lead = records.create_lead(ctx, title="Need 40 chairs", contact_id=contact.id)
        bob = orgs.create_user(session, org, f"bob@{DOMAIN}", "Bob Builder", Role.MEMBER)
        followers.follow(session, org.id, RecordRef(RecordType.LEAD, lead.id), user_id=bob.id)
        return Acme(lead.id, contact.id, bob.id)


def dkim_setup(app: Flask, tmp_path: Path) -> Any:
    """The app signs with a new key; the DNS lookup that publishes it, for dkimpy."""
    public = rsa_key_pem(tmp_path / "dkim.pem")
    app.config.update(DKIM_SELECTOR="connector", DKIM_KEY_FILE=str(tmp_path / "dkim.pem"))

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        if name == f"connector._domainkey.{DOMAIN}.".encode():
            return b"v=DKIM1; k=rsa; p=" + public
        return None

    return dns


def count(app: Flask, model: Any) -> int:
    with session_scope(app) as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


def relays(app: Flask) -> list[OutboundMail]:
    with session_scope(app) as session:
        rows = session.scalars(
            sa.select(OutboundMail).where(OutboundMail.kind == "relay").order_by(OutboundMail.id)
        ).all()
        for row in rows:
            _ = row.raw
            session.expunge(row)
        return list(rows)


def routed_row(app: Flask, inbound_id: int) -> InboundMessage:
    with session_scope(app) as session:
        row = session.get(InboundMessage, inbound_id)
        assert row is not None
        session.expunge(row)
        return row


def reply_from(sender: str, to: str, in_reply_to: str, subject: str, body: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail["Message-ID"] = make_msgid(domain="customer.test")
    mail["In-Reply-To"] = in_reply_to
    mail["References"] = in_reply_to
    mail.set_content(body)
    return mail


def test_a_message_from_a_lead_reaches_the_customer_her_reply_lands_on_it_and_is_relayed(
    app: Flask, caller: Any, tmp_path: Path
) -> None:
    acme = set_up(app, caller)
    dns = dkim_setup(app, tmp_path)
    url = f"/api/v1/leads/{acme.lead_id}/messages"
    with smtp_server(tmp_path) as server:
        app.config.update(SMTP_URL=server.url())
        answer = caller.post(url, json={"body_text": "Hello Carol,\n\nHere is our offer."})
        assert answer.status_code == 202, answer.json
        assert answer.json["status"] == "queued"
        send_outbound(app, outbound_id=answer.json["id"])

        [sent] = server.handler.messages
        assert sent.rcpt_tos == [CUSTOMER]
        assert sent.mail_from == f"sales@{DOMAIN}"
        assert dkimpy.verify(sent.content, dnsfunc=dns)
        mail = message_from_bytes(sent.content, policy=policy.default)
        assert mail["From"].addresses[0].display_name == "ann"
        assert mail["From"].addresses[0].addr_spec == f"sales@{DOMAIN}"
        reply_to = mail["Reply-To"].addresses[0].addr_spec
        assert reply_to.endswith(f"@{DOMAIN}")
        assert record_of_reply_address(
            app.config["SECRET_KEY"], caller.org_id, reply_to
        ) == RecordRef(RecordType.LEAD, acme.lead_id)
        assert mail["Subject"] == f"Need 40 chairs [#L-{acme.lead_id}]"
        assert mail["Message-ID"].endswith(f"@{DOMAIN}>")
        assert "Here is our offer." in mail.get_body(("plain",)).get_content()
        our_id = mail["Message-ID"]

        listed = caller.get(url).json["results"]
        assert [(m["id"], m["status"], m["to"]) for m in listed] == [
            (answer.json["id"], "sent", [CUSTOMER])
        ]
        assert listed[0]["author"] == {"id": caller.user_id, "name": "ann"}
        assert listed[0]["sent_at"] is not None and listed[0]["error"] is None
        card = caller.get(f"/api/v1/leads/{acme.lead_id}").json
        assert [m["id"] for m in card["messages"]] == [answer.json["id"]]

        # Logged on the lead and on Carol, as the writer's email; the writer follows.
        with session_scope(app) as session:
            activity = session.scalar(sa.select(Activity).where(Activity.message_id == our_id))
            assert activity is not None and activity.author_id == caller.user_id
            assert {(str(link.record_type), link.record_id) for link in activity.links} == {
                ("lead", acme.lead_id),
                ("contact", acme.contact_id),
            }
            row = session.get(OutboundMail, answer.json["id"])
            assert row.activity_id == activity.id and row.author_id == caller.user_id
            writer = session.scalar(
                sa.select(Follower).where(
                    Follower.record_id == acme.lead_id, Follower.user_id == caller.user_id
                )
            )
            assert writer is not None and writer.active

        # Carol answers from her mail client: to the Reply-To, In-Reply-To our message.
        leads_before = count(app, Lead)
        answer_mail = reply_from(
            f"Carol Customer <{CUSTOMER}>",
            reply_to,
            our_id,
            f"Re: Need 40 chairs [#L-{acme.lead_id}]",
            "Thanks, we take it.",
        )
        inbound_id = store(app, caller.org_id, answer_mail, [reply_to], envelope_from=CUSTOMER)
        route_inbound(app, inbound_id=inbound_id)
        row = routed_row(app, inbound_id)
        assert (row.outcome, row.record_type, row.record_id) == ("appended", "lead", acme.lead_id)
        assert count(app, Lead) == leads_before

        # Relayed to the lead's followers who are users: ann (its owner and writer), Bob.
        first = relays(app)
        assert sorted(r.to_addresses[0] for r in first) == ["ann@acme.test", f"bob@{DOMAIN}"]
        for relay in first:
            send_outbound(app, outbound_id=relay.id)
        to_bob = next(m for m in server.handler.messages[1:] if m.rcpt_tos == [f"bob@{DOMAIN}"])
        assert dkimpy.verify(to_bob.content, dnsfunc=dns)
        # RFC 8058: one-click unsubscribing is trusted only when the signature covers it.
        tampered = to_bob.content.replace(b"/unfollow/", b"/elsewhere/", 1)
        assert not dkimpy.verify(tampered, dnsfunc=dns)
        relayed = message_from_bytes(to_bob.content, policy=policy.default)
        assert relayed["From"].addresses[0].display_name == "Carol Customer (via Acme)"
        assert relayed["From"].addresses[0].addr_spec == f"sales@{DOMAIN}"
        assert relayed["Reply-To"].addresses[0].addr_spec == reply_to
        assert relayed["In-Reply-To"] == answer_mail["Message-ID"]
        assert relayed["Subject"] == f"Re: Need 40 chairs [#L-{acme.lead_id}]"
        assert relayed["X-Connector-Relay"] == f"lead:{acme.lead_id}"
        assert relayed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        text = relayed.get_body(("plain",)).get_content()
        assert "Thanks, we take it." in text and f"L-{acme.lead_id}" in text
        unsubscribe = str(relayed["List-Unsubscribe"]).strip("<>")
        assert unsubscribe.startswith(app.config["PUBLIC_URL"] + "/unfollow/")
        assert unsubscribe in text

        # Bob leaves through the link in his relay: the next reply reaches ann only.
        token = unsubscribe.rpartition("/")[2]
        with session_scope(app) as session:
            follower = session.get(Follower, follower_of_token(app.config["SECRET_KEY"], token))
            assert follower is not None and follower.user_id == acme.bob_id
            followers.unfollow(session, follower)
        again = reply_from(
            f"Carol Customer <{CUSTOMER}>", reply_to, our_id, "Re: Need 40 chairs", "And tables?"
        )
        route_inbound(
            app,
            inbound_id=store(app, caller.org_id, again, [reply_to], envelope_from=CUSTOMER),
        )
        second = relays(app)[len(first) :]
        assert [r.to_addresses for r in second] == [["ann@acme.test"]]


def test_a_users_own_mail_to_the_record_is_relayed_to_the_others_not_back_to_them(
    app: Flask, caller: Any
) -> None:
    acme = set_up(app, caller)
    posted = caller.post(f"/api/v1/leads/{acme.lead_id}/messages", json={"body_text": "Offer"})
    assert posted.status_code == 202
    with session_scope(app) as session:
        our_id = session.get(OutboundMail, posted.json["id"]).message_id
    mine = reply_from("ann <ann@acme.test>", f"sales@{DOMAIN}", our_id, "Re: offer", "Note")
    route_inbound(app, inbound_id=store(app, caller.org_id, mine, envelope_from="ann@acme.test"))
    assert [r.to_addresses for r in relays(app)] == [[f"bob@{DOMAIN}"]]


def test_another_organizations_record_is_not_found(
    app: Flask, caller: Any, make_caller: Any
) -> None:
    acme = set_up(app, caller)
    other = make_caller(org="Globex", email="gil@globex.test")
    base = f"/api/v1/leads/{acme.lead_id}/messages"
    assert other.post(base, json={"body_text": "Hi"}).status_code == 404
    assert other.post(f"{base}/preview", json={"body_text": "Hi"}).status_code == 404
    assert other.get(base).status_code == 404
    assert caller.post("/api/v1/leads/999999/messages", json={"body_text": "x"}).status_code == 404
    assert count(app, OutboundMail) == 0


def test_preview_shows_the_message_and_writes_nothing(app: Flask, caller: Any) -> None:
    acme = set_up(app, caller)
    before = [count(app, m) for m in (OutboundMail, Activity, ActivityLink, Follower)]
    answer = caller.post(
        f"/api/v1/leads/{acme.lead_id}/messages/preview",
        json={"body_html": "<p>Hello <b>Carol</b></p><script>alert(1)</script>"},
    )
    assert answer.status_code == 200, answer.json
    preview = answer.json
    assert preview["from"] == f"ann <sales@{DOMAIN}>"
    assert preview["to"] == [f"Carol Customer <{CUSTOMER}>"]
    assert preview["reply_to"].startswith("reply+l") and preview["reply_to"].endswith(DOMAIN)
    assert preview["subject"] == f"Need 40 chairs [#L-{acme.lead_id}]"
    assert "<b>Carol</b>" in preview["body_html"] and "script" not in preview["body_html"]
    assert preview["body_text"] == "Hello Carol"
    assert [count(app, m) for m in (OutboundMail, Activity, ActivityLink, Follower)] == before


def test_a_given_subject_keeps_the_records_tag_and_a_follower_contact_gets_it_too(
    app: Flask, caller: Any
) -> None:
    acme = set_up(app, caller)
    with session_scope(app) as session:
        ctx = ctx_for(app, session, caller.user_id)
        dave = records.create_contact(ctx, name="Dave Colleague", emails=["dave@customer.test"])
        ref = RecordRef(RecordType.LEAD, acme.lead_id)
        followers.follow(session, caller.org_id, ref, contact_id=dave.id)
    preview = caller.post(
        f"/api/v1/leads/{acme.lead_id}/messages/preview",
        json={"subject": "Our offer", "body_text": "See attached"},
    ).json
    assert preview["subject"] == f"Our offer [#L-{acme.lead_id}]"
    assert preview["to"] == [
        f"Carol Customer <{CUSTOMER}>",
        "Dave Colleague <dave@customer.test>",
    ]


def test_a_template_is_rendered_for_the_record(app: Flask, caller: Any) -> None:
    acme = set_up(app, caller)
    with session_scope(app) as session:
        template = create_template(
            ctx_for(app, session, caller.user_id),
            name="Offer",
            subject="Offer for {{ contact.name }}",
            body_html="<p>Dear {{ contact.first_name }}, here it is.</p>",
        )
        template_id = template.id
    url = f"/api/v1/leads/{acme.lead_id}/messages"
    preview = caller.post(f"{url}/preview", json={"template_id": template_id}).json
    assert preview["subject"] == f"Offer for Carol Customer [#L-{acme.lead_id}]"
    assert "Dear Carol, here it is." in preview["body_text"]
    # The subject given wins over the template's.
    chosen = caller.post(
        f"{url}/preview", json={"template_id": template_id, "subject": "Chairs"}
    ).json
    assert chosen["subject"] == f"Chairs [#L-{acme.lead_id}]"
    posted = caller.post(url, json={"template_id": template_id})
    assert posted.status_code == 202
    with session_scope(app) as session:
        row = session.get(OutboundMail, posted.json["id"])
        assert b"Dear Carol, here it is." in row.raw
    both = caller.post(url, json={"template_id": template_id, "body_text": "x"})
    assert both.status_code == 400 and "not both" in both.json["message"]
    missing = caller.post(url, json={"template_id": 999999})
    assert missing.status_code == 404


@pytest.mark.parametrize(
    "body", [{}, {"subject": "Only a subject"}, {"body_text": " \n "}, {"body_html": "<p> </p>"}]
)
def test_a_message_needs_a_body(app: Flask, caller: Any, body: dict[str, str]) -> None:
    acme = set_up(app, caller)
    answer = caller.post(f"/api/v1/leads/{acme.lead_id}/messages", json=body)
    assert answer.status_code == 400 and answer.json["message"]
    assert count(app, OutboundMail) == 0


def test_a_record_with_no_contact_to_write_to_is_refused(app: Flask, caller: Any) -> None:
    set_up(app, caller)
    with session_scope(app) as session:
        ctx = ctx_for(app, session, caller.user_id)
        lonely = records.create_lead(ctx, title="Walk-in").id
        company = records.create_company(ctx, name="Initech", domains=["initech.test"]).id
    for url in (f"/api/v1/leads/{lonely}/messages", f"/api/v1/companies/{company}/messages"):
        for path in (url, f"{url}/preview"):
            answer = caller.post(path, json={"body_text": "Hello"})
            assert answer.status_code == 400
            assert "no contact to write to" in answer.json["message"]
    assert count(app, OutboundMail) == 0


def test_a_contact_is_written_to_at_its_first_address(app: Flask, caller: Any) -> None:
    set_up(app, caller)
    with session_scope(app) as session:
        ctx = ctx_for(app, session, caller.user_id)
        erin = records.create_contact(
            ctx, name="Erin", emails=["erin@customer.test", "erin.home@customer.test"]
        ).id
    preview = caller.post(
        f"/api/v1/contacts/{erin}/messages/preview", json={"body_text": "Hi Erin"}
    ).json
    assert preview["to"] == ["Erin <erin@customer.test>"]
    assert preview["subject"] == "Erin"


def test_an_internationalized_domain_goes_out_in_its_ascii_form_and_utf8_before_the_at_is_a_400(
    app: Flask, caller: Any
) -> None:
    set_up(app, caller)
    with session_scope(app) as session:
        ctx = ctx_for(app, session, caller.user_id)
        hans = records.create_contact(ctx, name="Hans", emails=["hans@müller.example"]).id
        jorg = records.create_contact(ctx, name="Jörg", emails=["jörg@bücher.example"]).id
    preview = caller.post(f"/api/v1/contacts/{hans}/messages/preview", json={"body_text": "Hallo"})
    assert preview.status_code == 200, preview.json
    assert preview.json["to"] == ["Hans <hans@xn--mller-kva.example>"]
    sent = caller.post(f"/api/v1/contacts/{hans}/messages", json={"body_text": "Hallo"})
    assert sent.status_code == 202, sent.json
    with session_scope(app) as session:
        row = session.get(OutboundMail, sent.json["id"])
        assert row.to_addresses == ["hans@xn--mller-kva.example"]
    for path in (f"/api/v1/contacts/{jorg}/messages/preview", f"/api/v1/contacts/{jorg}/messages"):
        refused = caller.post(path, json={"body_text": "Hallo"})
        assert refused.status_code == 400, refused.json
        assert "beyond ASCII before the @" in refused.json["message"]


def test_a_deactivated_follower_is_not_listed(app: Flask, caller: Any) -> None:
    acme = set_up(app, caller)
    listed = caller.get(f"/api/v1/leads/{acme.lead_id}/followers").json["results"]
    assert acme.bob_id in [f["user_id"] for f in listed]
    with session_scope(app) as session:
        orgs.deactivate_user(session, session.get(User, acme.bob_id))
    listed = caller.get(f"/api/v1/leads/{acme.lead_id}/followers").json["results"]
    assert acme.bob_id not in [f["user_id"] for f in listed]
    card = caller.get(f"/api/v1/leads/{acme.lead_id}").json
    assert acme.bob_id not in [f["user_id"] for f in card["followers"]]


@pytest.mark.parametrize(("domain", "says"), [(False, "mail domain"), (True, "alias")])
def test_an_organization_without_its_mail_set_up_is_told_how(
    app: Flask, caller: Any, domain: bool, says: str
) -> None:
    acme = set_up(app, caller, domain=domain, alias=False)
    answer = caller.post(f"/api/v1/leads/{acme.lead_id}/messages", json={"body_text": "Hi"})
    assert answer.status_code == 400
    message = answer.json["message"]
    assert says in message
    assert "connector orgs mail-domain" in message and "connector aliases create" in message


def test_the_alias_the_record_came_through_is_the_one_it_answers_from(
    app: Flask, caller: Any
) -> None:
    set_up(app, caller)
    with session_scope(app) as session:
        org = session.get(Organization, caller.org_id)
        aliases.create_alias(session, org, address=f"support@{DOMAIN}", creates="ticket")
    mail = EmailMessage()
    mail["From"] = "Hank <hank@customer.test>"
    mail["To"] = f"support@{DOMAIN}"
    mail["Subject"] = "Printer on fire"
    mail["Message-ID"] = make_msgid(domain="customer.test")
    mail.set_content("Help")
    inbound_id = store(app, caller.org_id, mail, envelope_from="hank@customer.test")
    route_inbound(app, inbound_id=inbound_id)
    ticket_id = routed_row(app, inbound_id).record_id
    preview = caller.post(
        f"/api/v1/tickets/{ticket_id}/messages/preview", json={"body_text": "On our way"}
    ).json
    assert preview["from"] == f"ann <support@{DOMAIN}>"
    assert preview["subject"] == f"Printer on fire [#T-{ticket_id}]"
    # In-Reply-To Hank's message, which is the latest email on the ticket.
    posted = caller.post(f"/api/v1/tickets/{ticket_id}/messages", json={"body_text": "Ok"})
    with session_scope(app) as session:
        raw = session.get(OutboundMail, posted.json["id"]).raw
    assert message_from_bytes(raw)["In-Reply-To"] == mail["Message-ID"]


def test_a_message_that_fails_to_send_shows_as_failed(
    app: Flask, caller: Any, tmp_path: Path
) -> None:
    acme = set_up(app, caller)
    with smtp_server(tmp_path) as server:
        server.handler.refuse[CUSTOMER] = "550 5.1.1 No such user"
        app.config.update(SMTP_URL=server.url())
        posted = caller.post(f"/api/v1/leads/{acme.lead_id}/messages", json={"body_text": "Hi"})
        send_outbound(app, outbound_id=posted.json["id"])
    [listed] = caller.get(f"/api/v1/leads/{acme.lead_id}/messages").json["results"]
    assert listed["status"] == "failed" and "No such user" in listed["error"]
    assert listed["sent_at"] is None
    card = caller.get(f"/api/v1/leads/{acme.lead_id}").json
    assert [(m["status"], m["error"]) for m in card["messages"]] == [("failed", listed["error"])]
    contact_card = caller.get(f"/api/v1/contacts/{acme.contact_id}").json
    assert contact_card["messages"] == []  # written from the lead: listed there


def test_a_bounce_of_a_message_from_a_lead_marks_the_customers_address(
    app: Flask, caller: Any, tmp_path: Path
) -> None:
    from connector.mail.bounces import read_bounce

    acme = set_up(app, caller)
    with smtp_server(tmp_path) as server:
        app.config.update(SMTP_URL=server.url())
        posted = caller.post(f"/api/v1/leads/{acme.lead_id}/messages", json={"body_text": "Hi"})
        send_outbound(app, outbound_id=posted.json["id"])
    # The customer's server bounces it later: a real DSN, naming Carol's address.
    raw = (BOUNCES / "postfix_02.eml").read_bytes()
    sample = read_bounce(message_from_bytes(raw))
    assert sample is not None and sample.failed
    raw = raw.replace(sample.failed[0].encode(), CUSTOMER.encode())
    inbound_id = store(app, caller.org_id, raw, [f"sales@{DOMAIN}"], envelope_from="")
    route_inbound(app, inbound_id=inbound_id)
    assert routed_row(app, inbound_id).outcome == "bounce"
    assert relays(app) == []  # a bounce is relayed to no one
    with session_scope(app) as session:
        address = session.scalar(sa.select(ContactEmail).where(ContactEmail.email == CUSTOMER))
        assert address.bounced_at is not None and address.bounce_reason
    card = caller.get(f"/api/v1/contacts/{acme.contact_id}").json
    assert [b["email"] for b in card["bouncing"]] == [CUSTOMER]

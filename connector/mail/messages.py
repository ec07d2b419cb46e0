"""Messages written from a record: a salesperson writes to the customer from the lead, and
the customer's answer comes back onto it.

A message goes to the record's contact and to its followers who are contacts, from the
writer's name at the alias the record came in through (else the organization's first
alias), with the record's signed reply address as Reply-To and In-Reply-To the latest email
logged on the record, so that the customer's client threads it and their answer finds the
record by any of the three (Message-ID, reply address, the number in the subject).

It is composed once and queued as an OutboundMail row (connector.mail.composing), logged on
the record and its contact as the writer's email (so a reply threads by In-Reply-To), and
the writer follows the record. The caller commits, then enqueues "send_outbound".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from connector.activities import service as activities
from connector.activities.html_text import html_to_text, sanitize_html, text_to_html
from connector.activities.mime import parse_raw_message
from connector.activities.models import Activity, ActivityKind, ActivityLink
from connector.email_templates.service import render_template
from connector.errors import InvalidInput
from connector.mail import followers
from connector.mail.composing import (
    Outgoing,
    UncarriableAddress,
    compose,
    format_address,
    new_message_id,
    queue_outbound,
    wire_address,
)
from connector.mail.models import Alias, Follower, InboundMessage, OutboundMail
from connector.mail.numbers import with_tag
from connector.mail.reply_addresses import reply_address
from connector.orgs.context import Ctx
from connector.orgs.models import Organization, User
from connector.records.models import Contact, RecordType
from connector.records.refs import RecordRef
from connector.records.service import get_record, live

KIND = "message"
# What a record's list of messages shows: what went to the customer about it (a relay is a
# copy of the customer's own mail for the team, and is not listed).
LISTED_KINDS = ("message", "acknowledgment")
# Activities logged without a Message-ID get a stand-in one (activities.service's
# fingerprint): no mail client ever saw it, so it threads nothing.
_FINGERPRINT_DOMAIN = "@fingerprint.connector>"


@dataclass(frozen=True)
class Draft:
    """What the writer gave: a body (text, HTML, or a template), maybe a subject."""

    subject: str | None = None
    body_text: str | None = None
    body_html: str | None = None
    template_id: int | None = None


@dataclass(frozen=True)
class Prepared:
    """The message ready to compose, and the records it is logged on."""

    outgoing: Outgoing
    logged_on: list[RecordRef]


def record_title(record: Any, ref: RecordRef) -> str:
    if ref.type == RecordType.LEAD:
        return str(record.title)
    if ref.type == RecordType.TICKET:
        return str(record.subject)
    return str(record.name)


def _first_address(contact: Contact | None) -> tuple[str, str] | None:
    """A live contact's first address, with its name; None for none."""
    if contact is None or live(contact) is None or not contact.emails:
        return None
    return (contact.name, contact.emails[0].email)


def record_contact(record: Any, ref: RecordRef) -> Contact | None:
    """The record's own contact: a lead's or ticket's, a contact itself; a company has none."""
    if ref.type == RecordType.CONTACT:
        return record  # type: ignore[no-any-return]
    if ref.type in (RecordType.LEAD, RecordType.TICKET):
        return live(record.contact)
    return None


def recipients(ctx: Ctx, record: Any, ref: RecordRef) -> list[tuple[str, str]]:
    """The record's contact and its followers who are contacts, each at their first
    address, each once; InvalidInput when there is none."""
    found: dict[str, tuple[str, str]] = {}
    people = [record_contact(record, ref)]
    # The contacts among the followers, read directly: followers.followers would also make
    # the owner's row, and a preview writes nothing.
    people += ctx.session.scalars(
        select(Contact)
        .join(Follower, Follower.contact_id == Contact.id)
        .where(
            Follower.organization_id == ctx.org_id,
            Follower.record_type == ref.type,
            Follower.record_id == ref.id,
            Follower.active.is_(True),
        )
        .order_by(Follower.id)
    )
    for contact in people:
        pair = _first_address(contact)
        if pair is not None:
            found.setdefault(pair[1], pair)
    if not found:
        raise InvalidInput(
            "The record has no contact to write to: give it a contact with an email address, "
            "or add one as a follower.",
            {"to": ["none"]},
        )
    return list(found.values())


def sending_alias(ctx: Ctx, ref: RecordRef) -> Alias:
    """The alias the record came in through (its first message's); else the organization's
    first alias. InvalidInput, saying what to set up, when mail cannot be sent at all."""
    org = ctx.session.get(Organization, ctx.org_id)
    assert org is not None  # the caller's own organization
    setup = (
        "Set up the organization's mail first: `connector orgs mail-domain --org NAME "
        "--domain D`, then `connector aliases create --org NAME --address sales@D "
        "--creates lead`."
    )
    if not org.mail_domain:
        raise InvalidInput(f"{org.name} has no mail domain to send from. {setup}")
    came_through = ctx.session.scalar(
        select(Alias)
        .join(InboundMessage, InboundMessage.alias_id == Alias.id)
        .where(
            InboundMessage.organization_id == ctx.org_id,
            InboundMessage.record_type == ref.type,
            InboundMessage.record_id == ref.id,
            Alias.organization_id == ctx.org_id,
        )
        .order_by(InboundMessage.received_at, InboundMessage.id)
        .limit(1)
    )
    if came_through is not None:
        return came_through
    first = ctx.session.scalar(
        select(Alias).where(Alias.organization_id == ctx.org_id).order_by(Alias.id).limit(1)
    )
    if first is None:
        raise InvalidInput(f"{org.name} has no team address (alias) to send from. {setup}")
    return first


def latest_email_id(ctx: Ctx, ref: RecordRef) -> str | None:
    """The Message-ID of the latest email logged on the record (a real one, not a stand-in),
    which the message answers."""
    return ctx.session.scalar(
        select(Activity.message_id)
        .join(ActivityLink, ActivityLink.activity_id == Activity.id)
        .where(
            ActivityLink.organization_id == ctx.org_id,
            ActivityLink.record_type == ref.type,
            ActivityLink.record_id == ref.id,
            Activity.kind == ActivityKind.EMAIL,
            Activity.message_id.is_not(None),
            Activity.message_id.not_like(f"%{_FINGERPRINT_DOMAIN}"),
        )
        .order_by(Activity.occurred_at.desc(), Activity.id.desc())
        .limit(1)
    )


def _bodies(ctx: Ctx, ref: RecordRef, draft: Draft) -> tuple[str | None, str, str]:
    """(the template's subject or None, text, sanitized HTML) of the draft."""
    given = [
        name
        for name, value in (
            ("body_text", draft.body_text),
            ("body_html", draft.body_html),
            ("template_id", draft.template_id),
        )
        if value is not None
    ]
    if not given:
        raise InvalidInput(
            "Give the message's body: body_text, body_html or template_id.", {"body": ["missing"]}
        )
    if draft.template_id is not None and len(given) > 1:
        raise InvalidInput(
            "Give a body (body_text or body_html) or a template_id, not both.",
            {"template_id": ["with a body"]},
        )
    subject: str | None = None
    if draft.template_id is not None:
        rendered = render_template(ctx, draft.template_id, ref)
        subject, html, text = rendered["subject"], rendered["body_html"], rendered["body_text"]
    elif draft.body_html is not None:
        html = sanitize_html(draft.body_html)
        text = draft.body_text if draft.body_text is not None else html_to_text(html)
    else:
        text = draft.body_text or ""
        html = sanitize_html(text_to_html(text))
    if not text.strip() and not html_to_text(html).strip():
        raise InvalidInput("The message is empty: write something to send.", {"body": ["empty"]})
    return subject, text, html


def prepare(ctx: Ctx, ref: RecordRef, draft: Draft, *, secret_key: str) -> Prepared:
    """The message the draft makes on the record, checked, not yet written anywhere."""
    record = get_record(ctx.session, ctx.org_id, ref)  # NotFound: none, or another's
    template_subject, text, html = _bodies(ctx, ref, draft)
    to = recipients(ctx, record, ref)
    alias = sending_alias(ctx, ref)
    mail_domain = alias.organization.mail_domain
    assert mail_domain is not None  # sending_alias checked it
    chosen = (draft.subject or "").strip() or template_subject or record_title(record, ref)
    subject = with_tag(" ".join(chosen.split()), ref)
    answered = latest_email_id(ctx, ref)
    outgoing = Outgoing(
        sender=(ctx.user.name, alias.address),
        to=to,
        subject=subject,
        message_id=new_message_id(mail_domain),
        body_text=text,
        body_html=html,
        reply_to=reply_address(secret_key, ctx.org_id, mail_domain, ref),
        in_reply_to=answered,
        references=[answered] if answered else [],
    )
    for _, address in outgoing.to:
        try:
            wire_address(address)
        except UncarriableAddress as exc:
            raise InvalidInput(exc.args[0], {"to": [address]}) from exc
    logged_on = [ref]
    contact = record_contact(record, ref)
    if contact is not None and ref.type != RecordType.CONTACT:
        logged_on.append(RecordRef(RecordType.CONTACT, contact.id))
    return Prepared(outgoing, logged_on)


def preview(ctx: Ctx, ref: RecordRef, draft: Draft, *, secret_key: str) -> dict[str, Any]:
    """What sending the draft would send; nothing is written."""
    outgoing = prepare(ctx, ref, draft, secret_key=secret_key).outgoing
    return {
        "from": format_address(outgoing.sender),
        "to": [format_address(pair) for pair in outgoing.to],
        "reply_to": outgoing.reply_to,
        "subject": outgoing.subject,
        "body_html": outgoing.body_html,
        "body_text": outgoing.body_text,
    }


def write_message(ctx: Ctx, ref: RecordRef, draft: Draft, *, secret_key: str) -> OutboundMail:
    """Queue the message (flushed, not committed), log it on the record and its contact as
    the writer's email, and make the writer follow the record. The caller commits, then
    enqueues "send_outbound" for the row."""
    prepared = prepare(ctx, ref, draft, secret_key=secret_key)
    raw = compose(prepared.outgoing)
    logged = activities.log_email(ctx, parse_raw_message(raw), prepared.logged_on)
    row = queue_outbound(
        ctx.session,
        org_id=ctx.org_id,
        kind=KIND,
        outgoing=prepared.outgoing,
        raw=raw,
        record=ref,
    )
    row.author_id = ctx.user.id
    row.activity_id = logged.activity.id
    followers.follow(ctx.session, ctx.org_id, ref, user_id=ctx.user.id)
    ctx.session.flush()
    return row


def list_messages(
    ctx: Ctx, ref: RecordRef, limit: int | None = None
) -> list[tuple[OutboundMail, User | None]]:
    """The messages sent (or being sent, or failed) about the record, newest first, each with
    its author (None for the connector's own, an acknowledgment)."""
    get_record(ctx.session, ctx.org_id, ref)
    query = (
        select(OutboundMail, User)
        .outerjoin(User, User.id == OutboundMail.author_id)
        .where(
            OutboundMail.organization_id == ctx.org_id,
            OutboundMail.record_type == ref.type,
            OutboundMail.record_id == ref.id,
            OutboundMail.kind.in_(LISTED_KINDS),
        )
        .order_by(OutboundMail.created_at.desc(), OutboundMail.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    return [(row, author) for row, author in ctx.session.execute(query)]

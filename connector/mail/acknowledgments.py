"""Acknowledgments: the automatic "we received your message" of an alias with auto-reply.

It goes to the person who wrote, from the alias (named as the organization), with the
record's number in the subject, its signed reply address as Reply-To, and RFC 3834's
`Auto-Submitted: auto-replied` so that other robots do not answer it. It is logged on the
record as an email, so a reply to it threads by In-Reply-To even when the customer's client
drops the number and the Reply-To.
"""

from __future__ import annotations

import datetime as dt
import logging
import re

from sqlalchemy import select

from connector.activities import service as activities
from connector.activities.email_data import EmailData
from connector.activities.html_text import text_to_html
from connector.activities.mime import parse_raw_message
from connector.addresses import domain_of
from connector.email_templates.service import render_template
from connector.errors import InvalidInput, NotFound
from connector.mail.composing import Outgoing, compose, new_message_id, queue_outbound
from connector.mail.models import Alias, InboundMessage, OutboundMail
from connector.mail.numbers import record_number, with_tag
from connector.mail.reply_addresses import looks_like_reply_address, reply_address
from connector.orgs.context import Ctx
from connector.orm import utcnow
from connector.records.refs import RecordRef

log = logging.getLogger(__name__)

KIND = "acknowledgment"
# RFC 3834 (3.1.1): one automatic answer per sender within a period; an hour here, so that
# a customer who writes three times in a row hears from us once.
RATE_WINDOW = dt.timedelta(hours=1)
# RFC 3834 (2): no automatic answer to mailing lists' and mail systems' own addresses.
_ROBOT_LOCAL = re.compile(
    r"(owner-.*|.*-request|mailer-daemon|postmaster|no-?reply|do-?not-?reply|bounces?)",
    re.IGNORECASE,
)


def _robot_address(ctx: Ctx, address: str, mail_domain: str) -> bool:
    """An address no acknowledgment goes to: a list's or a mail system's, or one of the
    organization's own aliases and reply addresses (answering itself would loop)."""
    if _ROBOT_LOCAL.fullmatch(address.partition("@")[0]):
        return True
    if domain_of(address) != mail_domain:
        return False
    own_alias = ctx.session.scalar(select(Alias.id).where(Alias.address == address))
    return own_alias is not None or looks_like_reply_address(address)


def _acknowledged_lately(ctx: Ctx, alias: Alias, recipient: str) -> bool:
    """Did this alias acknowledge this sender within RATE_WINDOW? (The alias's rows of the
    last hour are few; their recipients are compared here, as JSON columns query
    differently on each database.)"""
    rows = ctx.session.scalars(
        select(OutboundMail.to_addresses).where(
            OutboundMail.organization_id == ctx.org_id,
            OutboundMail.kind == KIND,
            OutboundMail.from_address == alias.address,
            OutboundMail.created_at >= utcnow() - RATE_WINDOW,
        )
    )
    return any(recipient in (to or []) for to in rows)


def _reply_subject(subject: str) -> str:
    clean = " ".join(subject.split()) or "your message"
    return clean if re.match(r"re\s*:", clean, re.IGNORECASE) else f"Re: {clean}"


def _built_in_body(subject: str, record: RecordRef, org_name: str) -> str:
    quoted = " ".join(subject.split())
    about = f' "{quoted}"' if quoted else ""
    number = record_number(record)
    reference = (
        f"Your reference is {number}; reply to this email to add to it."
        if number
        else "Reply to this email to add to it."
    )
    return (
        f"Hello,\n\nWe received your message{about} and will answer soon. {reference}\n\n{org_name}"
    )


def _body(ctx: Ctx, alias: Alias, email: EmailData, record: RecordRef) -> tuple[str, str]:
    """(text, HTML): the alias's template rendered for the record, or the built-in text
    when it has none (or it fails to render: the customer still hears from us)."""
    if alias.auto_reply_template_id is not None:
        try:
            rendered = render_template(ctx, alias.auto_reply_template_id, record)
        except (InvalidInput, NotFound) as exc:
            log.warning(
                "The auto-reply template of %s failed (%s): the built-in text is sent",
                alias.address,
                exc,
            )
        else:
            if rendered["body_text"].strip():
                return rendered["body_text"], rendered["body_html"]
    text = _built_in_body(email.subject, record, alias.organization.name)
    return text, text_to_html(text)


def queue_acknowledgment(
    ctx: Ctx,
    *,
    alias: Alias,
    inbound: InboundMessage,
    email: EmailData,
    record: RecordRef,
    secret_key: str,
) -> OutboundMail | None:
    """Compose the alias's acknowledgment of `email` (which opened `record`) as an
    OutboundMail row, queued, flushed, not committed; None when there is nothing to send:
    the alias does not auto-reply, the mail has no sender, the sender is a robot or the
    organization itself, or it was acknowledged within the hour.

    The routing job decides that the mail deserves an answer at all (not a bounce, a loop,
    a list or auto-submitted); this only keeps to RFC 3834's rules on whom and how often.
    """
    recipient = email.from_email
    org = alias.organization
    mail_domain = org.mail_domain or domain_of(alias.address)
    if not alias.auto_reply or not recipient:
        return None
    if _robot_address(ctx, recipient, mail_domain) or _acknowledged_lately(ctx, alias, recipient):
        return None
    text, html = _body(ctx, alias, email, record)
    outgoing = Outgoing(
        sender=(org.name, alias.address),
        to=[(email.from_name, recipient)],
        subject=with_tag(_reply_subject(email.subject), record),
        message_id=new_message_id(mail_domain),
        body_text=text,
        body_html=html,
        reply_to=reply_address(secret_key, org.id, mail_domain, record),
        in_reply_to=email.message_id,
        references=[email.message_id] if email.message_id else [],
        auto_submitted="auto-replied",
        # Exchange's own: no out-of-office or read receipt in answer to this one.
        extra_headers=[("X-Auto-Response-Suppress", "All")],
    )
    raw = compose(outgoing)
    activities.log_email(ctx, parse_raw_message(raw), [record])
    return queue_outbound(
        ctx.session,
        org_id=org.id,
        kind=KIND,
        outgoing=outgoing,
        raw=raw,
        record=record,
        inbound_id=inbound.id,
    )

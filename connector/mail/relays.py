"""Relays: each new message on a record that comes in through the gateway is sent on to the
record's followers who are users, so that the team follows the conversation from their own
mail client, as Odoo's chatter notifies a record's followers.

A relay is the person's mail forwarded, not a notice: From names the writer "via" the
organization at the alias, To the follower, Reply-To the record's reply address (an answer
from the mail client lands on the record, and is relayed on to the others), the subject
with the record's tag, In-Reply-To the original message. Its footer and List-Unsubscribe
(RFC 2369, with RFC 8058's one-click POST) carry the follower's signed unfollow link.
`X-Connector-Relay` marks it, so that one coming back to the gateway (a follower's mailbox
forwarding to the alias) is dropped as a loop and never relayed again.
"""

from __future__ import annotations

import html
import logging

from sqlalchemy import select

from connector.activities.email_data import EmailData
from connector.activities.html_text import text_to_html
from connector.mail import followers
from connector.mail.composing import Outgoing, compose, new_message_id, queue_outbound
from connector.mail.loops import RELAY_HEADER
from connector.mail.messages import record_title
from connector.mail.models import Alias, InboundMessage, OutboundMail
from connector.mail.numbers import record_number, with_tag
from connector.mail.reply_addresses import reply_address
from connector.mail.unfollow_links import unfollow_path
from connector.orgs.context import Ctx
from connector.orgs.models import Organization
from connector.records.models import RecordType
from connector.records.refs import RecordRef
from connector.records.service import get_record

log = logging.getLogger(__name__)

KIND = "relay"


def relay_mark(record: RecordRef) -> str:
    """The X-Connector-Relay value: the record it was relayed from ("lead:12")."""
    return f"{RecordType(record.type).value}:{record.id}"


def _alias(ctx: Ctx, inbound_row: InboundMessage) -> Alias | None:
    """The alias the message came to, else the organization's first."""
    if inbound_row.alias_id is not None:
        alias = ctx.session.get(Alias, inbound_row.alias_id)
        if alias is not None and alias.organization_id == ctx.org_id:
            return alias
    return ctx.session.scalar(
        select(Alias).where(Alias.organization_id == ctx.org_id).order_by(Alias.id).limit(1)
    )


def _about(record: RecordRef, title: str) -> str:
    """ "the lead L-12, Quote for 40 chairs" """
    number = record_number(record)
    return f"the {record.type.value} {number + ', ' if number else ''}{title}"


def _footer(about: str, unfollow_url: str) -> tuple[str, str]:
    """(text, HTML) put under the relayed body."""
    text = (
        f"\n\n-- \nYou receive this because you follow {about}. Reply to this email to "
        f"answer on it.\nStop following it: {unfollow_url}\n"
    )
    markup = (
        '<hr><p style="color:#666;font-size:12px">'
        f"You receive this because you follow {html.escape(about)}. Reply to this email to "
        f'answer on it. <a href="{html.escape(unfollow_url, quote=True)}">Stop following '
        "it</a>.</p>"
    )
    return text, markup


def queue_relays(
    ctx: Ctx,
    *,
    record: RecordRef,
    incoming_email: EmailData,
    inbound_row: InboundMessage,
    secret_key: str,
    public_url: str,
) -> list[OutboundMail]:
    """A relay of the message for each active follower of the record who is an active user,
    but the message's author: OutboundMail rows, queued, flushed, not committed (the
    caller commits them with the routing, then enqueues "send_outbound" for each).

    The caller decides the message deserves relaying at all (appended or created, not a
    bounce, a loop or a robot's answer)."""
    # A thread found through the logged email names its type as the column holds it (text).
    record = RecordRef(RecordType(record.type), record.id)
    org = ctx.session.get(Organization, ctx.org_id)
    if org is None or not org.mail_domain:
        return []
    alias = _alias(ctx, inbound_row)
    if alias is None:
        return []
    mail_domain = org.mail_domain
    author = (incoming_email.from_email or "").lower()
    title = record_title(get_record(ctx.session, ctx.org_id, record), record)
    about = _about(record, title)
    writer = incoming_email.from_name or incoming_email.from_email or "Someone"
    subject = with_tag(incoming_email.subject.strip() or "(no subject)", record)
    original = incoming_email.message_id
    body_html = incoming_email.body_html or text_to_html(incoming_email.body_text)
    rows: list[OutboundMail] = []
    for follower in followers.followers(ctx.session, ctx.org_id, record):
        user = follower.user
        if user is None or not user.active or user.email.lower() == author:
            continue
        unfollow_url = public_url.rstrip("/") + unfollow_path(secret_key, follower.id)
        footer_text, footer_html = _footer(about, unfollow_url)
        outgoing = Outgoing(
            sender=(f"{writer} (via {org.name})", alias.address),
            to=[(user.name, user.email)],
            subject=subject,
            message_id=new_message_id(mail_domain),
            body_text=incoming_email.body_text + footer_text,
            body_html=body_html + footer_html,
            reply_to=reply_address(secret_key, org.id, mail_domain, record),
            in_reply_to=original,
            references=[original] if original else [],
            extra_headers=[
                ("List-Unsubscribe", f"<{unfollow_url}>"),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
                (RELAY_HEADER, relay_mark(record)),
                # Exchange's out-of-office answers to a relay would land on the record.
                ("X-Auto-Response-Suppress", "All"),
            ],
        )
        try:
            # One follower whose relay cannot be made (an address our mail cannot carry)
            # costs that relay, never the message's place on the record.
            with ctx.session.begin_nested():
                rows.append(
                    queue_outbound(
                        ctx.session,
                        org_id=org.id,
                        kind=KIND,
                        outgoing=outgoing,
                        raw=compose(outgoing),
                        record=record,
                        inbound_id=inbound_row.id,
                    )
                )
        except (ValueError, LookupError) as error:  # UnicodeError is a ValueError
            log.warning("No relay of %s to %s: %s", original, user.email, error)
    return rows

"""Replying from either add-in: render a template, send it through the user's mailbox, log it.

The mailbox (connector.mailbox.Mailbox) is the user's Gmail or Exchange; the entry points
build it for the user, call `send_reply`, then `commit_sent`, and say what went wrong in
their own terms (a card, a JSON error).
"""

from __future__ import annotations

import datetime as dt
from email.utils import formataddr
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from connector.activities import service as activities
from connector.activities.mime import email_from_fields, parse_raw_message
from connector.email_templates.service import render_template
from connector.errors import SentNotLogged
from connector.mailbox import Mailbox, Reply
from connector.orgs.context import Ctx
from connector.orm import is_outage
from connector.records.models import RecordType
from connector.records.refs import RecordRef
from connector.records.service import contact_for_email, get_record
from connector.store import StoreUnavailable


def contact_record(ctx: Ctx, address: str) -> RecordRef | None:
    """The contact of `address`, which a reply to it is rendered for and logged on."""
    contact = contact_for_email(ctx.session, ctx.org_id, address) if address else None
    return RecordRef(RecordType.CONTACT, contact.id) if contact else None


def send_reply(
    ctx: Ctx, mailbox: Mailbox, *, message_id: str, template_id: int, record: RecordRef | None
) -> dict[str, Any]:
    """Send the template, rendered for `record`, as a reply to `message_id`; log it on the
    record. Raises SentNotLogged when the records became unavailable after the send."""
    if record is not None:
        # Before sending: a reply must not go out when it cannot be logged where asked.
        get_record(ctx.session, ctx.org_id, record)
    rendered = render_template(ctx, template_id, record)
    sent = mailbox.send(message_id, Reply(rendered["body_html"], rendered["body_text"]))
    result: dict[str, Any] = {"sent": True, "subject": sent.subject or rendered["subject"]}
    if record is None:
        return {**result, "activity_id": None, "records": []}
    if sent.raw is not None:
        email = parse_raw_message(sent.raw)
    else:
        email = email_from_fields(
            message_id=sent.message_id,
            subject=result["subject"],
            from_header=formataddr((ctx.user.name, ctx.user.email)),
            to=sent.to,
            cc=sent.cc,
            date=dt.datetime.now(dt.UTC),
            body_html=rendered["body_html"],
            body_text=rendered["body_text"],
            attachments=[],
        )
    try:
        logged = activities.log_email(ctx, email, [record])
    except (SQLAlchemyError, StoreUnavailable) as exc:
        if not is_outage(exc):
            raise
        raise SentNotLogged() from exc
    return {**result, "activity_id": logged.activity.id, "records": [record]}


def commit_sent(ctx: Ctx, result: dict[str, Any]) -> None:
    """Commit the logged reply. It went out already, so an outage now is SentNotLogged (do
    not send it again), not an outage's "nothing was saved, try again".

    Without a record nothing was written, so there is nothing to commit (and no outage to
    misreport): send_reply writes only the log, and a mailbox that writes (Outlook's
    rotated refresh token) commits that itself before it sends.
    """
    if result["activity_id"] is None:
        return
    try:
        ctx.session.commit()
    except SQLAlchemyError as exc:
        if not is_outage(exc):
            raise
        raise SentNotLogged() from exc

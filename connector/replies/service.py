"""Replying from Outlook: render a template, send it through the user's mailbox, log it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from email.utils import formataddr
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from connector.activities import service as activities
from connector.activities.mime import email_from_fields
from connector.email_templates.service import render_template
from connector.errors import SentNotLogged
from connector.orgs.context import Ctx
from connector.orm import is_outage
from connector.records.refs import RecordRef
from connector.records.service import get_record
from connector.store import StoreUnavailable

# (Graph message id, reply HTML) -> the draft as sent, in Graph's message shape.
SendReply = Callable[[str, str], dict[str, Any]]


def _addresses(recipients: list[dict[str, Any]] | None) -> list[str]:
    found = []
    for recipient in recipients or []:
        address = (recipient.get("emailAddress") or {}) if isinstance(recipient, dict) else {}
        if address.get("address"):
            found.append(formataddr((str(address.get("name") or ""), str(address["address"]))))
    return found


def send_reply(
    ctx: Ctx, send: SendReply, *, message_id: str, template_id: int, record: RecordRef | None
) -> dict[str, Any]:
    """Send the template, rendered for `record`, as a reply; log it on the record."""
    if record is not None:
        # Before sending: a reply must not go out when it cannot be logged where asked.
        get_record(ctx.session, ctx.org_id, record)
    rendered = render_template(ctx, template_id, record)
    sent = send(message_id, rendered["body_html"])
    result: dict[str, Any] = {"sent": True, "subject": sent.get("subject") or rendered["subject"]}
    if record is None:
        return {**result, "activity_id": None, "records": []}
    email = email_from_fields(
        # Exchange gives the draft its Message-ID, so a later log of the same email
        # (from Sent Items) finds this activity instead of making another.
        message_id=sent.get("internetMessageId"),
        subject=result["subject"],
        from_header=formataddr((ctx.user.name, ctx.user.email)),
        to=_addresses(sent.get("toRecipients")),
        cc=_addresses(sent.get("ccRecipients")),
        date=dt.datetime.now(dt.UTC),
        body_html=rendered["body_html"],
        body_text=rendered["body_text"],
        attachments=[],
    )
    try:
        logged = activities.log_email(ctx, email, [record])
    except (SQLAlchemyError, StoreUnavailable) as exc:
        if isinstance(exc, SQLAlchemyError) and not is_outage(exc):
            raise
        raise SentNotLogged() from exc
    return {**result, "activity_id": logged.activity.id, "records": [record]}

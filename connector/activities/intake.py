"""Turning an email into records: the payload into EmailData, and leads or tickets from an email."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from connector.activities.email_data import AttachmentData, EmailData
from connector.activities.mime import email_from_fields, parse_raw_message
from connector.activities.service import log_email
from connector.errors import InvalidInput
from connector.orgs.context import Ctx
from connector.records import service as records
from connector.records.models import Lead, RecordType, Ticket
from connector.records.refs import RecordRef


def _b64(value: str, field: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"{field} is not valid base64.", {field: ["not base64"]}) from exc


def email_from_payload(payload: dict[str, Any]) -> EmailData:
    """EmailData from the API's email object (see EmailIn): raw MIME, or fields."""
    if "raw" in payload:
        return parse_raw_message(_b64(payload["raw"], "raw"))
    attachments = [
        AttachmentData(
            filename=a["filename"],
            content_type=a["content_type"],
            content=_b64(a["content_base64"], f"attachments[{i}].content_base64"),
        )
        for i, a in enumerate(payload.get("attachments", []))
    ]
    return email_from_fields(
        message_id=payload.get("message_id"),
        subject=payload.get("subject", ""),
        from_header=payload["from_"],
        to=payload.get("to", []),
        cc=payload.get("cc", []),
        date=payload.get("date"),
        body_html=payload.get("body_html", ""),
        body_text=payload.get("body_text", ""),
        attachments=attachments,
    )


def _from_email(
    ctx: Ctx, data: dict[str, Any], title_field: str
) -> tuple[EmailData | None, dict[str, Any]]:
    payload = data.pop("email", None)
    email = email_from_payload(payload) if payload is not None else data.pop("email_data", None)
    return email, fill_from_email(ctx, data, email, title_field)


def fill_from_email(
    ctx: Ctx, data: dict[str, Any], email: EmailData | None, title_field: str
) -> dict[str, Any]:
    """Fill the record's fields from its email: title, text, the sender's contact and company."""
    if email is None:
        if not data.get(title_field):
            raise InvalidInput(
                f"Give a {title_field}, or the email to take it from.", {title_field: ["missing"]}
            )
        return data
    data.setdefault(title_field, (email.subject.strip() or "(no subject)")[:300])
    data.setdefault("description", email.body_text)
    if data.get("contact_id") is None and email.from_email:
        contact = records.contact_for_sender(ctx, email.from_email, email.from_name)
        data["contact_id"] = contact.id if contact is not None else None
    return data


def _log_on(ctx: Ctx, email: EmailData | None, record: Lead | Ticket, kind: RecordType) -> None:
    if email is None:
        return
    refs = [RecordRef(kind, record.id)]
    if record.contact_id is not None:
        refs.append(RecordRef(RecordType.CONTACT, record.contact_id))
    log_email(ctx, email, refs)


def create_lead(ctx: Ctx, data: dict[str, Any]) -> Lead:
    """A lead, from its fields or from an email (then also logged on the lead and its contact).

    The email is `email` (the API's payload) or `email_data` (already parsed).
    """
    email, fields = _from_email(ctx, dict(data), "title")
    lead = records.create_lead(ctx, **fields)
    _log_on(ctx, email, lead, RecordType.LEAD)
    return lead


def create_ticket(ctx: Ctx, data: dict[str, Any]) -> Ticket:
    """A ticket, from its fields or from an email, like a lead."""
    email, fields = _from_email(ctx, dict(data), "subject")
    ticket = records.create_ticket(ctx, **fields)
    _log_on(ctx, email, ticket, RecordType.TICKET)
    return ticket

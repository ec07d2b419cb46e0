"""Composing the mail the connector sends itself, and queueing it as an OutboundMail row.

Whatever sends (an acknowledgment now, a message written on a record next) composes an
`Outgoing`, then `queue_outbound` writes it in the caller's transaction; after the commit
the caller enqueues the "send_outbound" job for the row (connector.jobs.outbound), which
signs and sends it. A message is composed once: its bytes, its Message-ID and all, are
what is logged on the record and what goes out, however many tries sending takes.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from sqlalchemy.orm import Session

from connector.mail.models import OutboundMail, OutboundStatus
from connector.orm import utcnow
from connector.records.refs import RecordRef


class UncarriableAddress(ValueError):
    """An address plain SMTP cannot carry: letters beyond ASCII before the @ (RFC 6532's
    SMTPUTF8 would be needed at every server on the way, and we do not send it)."""


def wire_address(address: str) -> str:
    """The address as it goes on the wire: an internationalized domain in its ASCII form
    (IDNA, "müller.example" is "xn--mller-kva.example"); UncarriableAddress otherwise."""
    local, _, domain = address.rpartition("@")
    if not local.isascii():
        raise UncarriableAddress(
            f"{address} cannot be written to: it has letters beyond ASCII before the @, "
            "which our mail cannot carry."
        )
    if domain.isascii():
        return address
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError as exc:
        raise UncarriableAddress(f"{address} has a domain that is not a valid name.") from exc


def format_address(pair: tuple[str, str]) -> str:
    """'"Name" <address>' for a header, the address as wire_address gives it."""
    name, address = pair
    return formataddr((name, wire_address(address)))


def new_message_id(domain: str) -> str:
    """A Message-ID of our own at the organization's mail domain: "<random@domain>". Random,
    not time and process id (make_msgid's), so that it tells nothing about the server."""
    return f"<{secrets.token_hex(16)}@{domain}>"


@dataclass(frozen=True)
class Outgoing:
    """A message to compose: the addresses as (display name, address) pairs."""

    sender: tuple[str, str]
    to: Sequence[tuple[str, str]]
    subject: str
    message_id: str
    body_text: str
    body_html: str
    reply_to: str | None = None
    # The Message-ID answered, and the thread's References (oldest first, it last).
    in_reply_to: str | None = None
    references: Sequence[str] = ()
    # RFC 3834: "auto-replied" for an acknowledgment, "auto-generated" for a notice; None
    # for what a person wrote.
    auto_submitted: str | None = None
    extra_headers: Sequence[tuple[str, str]] = field(default_factory=tuple)


def compose(outgoing: Outgoing) -> bytes:
    """The message as it goes on the wire (CRLF line ends): text and HTML alternatives."""
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = format_address(outgoing.sender)
    message["To"] = ", ".join(format_address(pair) for pair in outgoing.to)
    message["Subject"] = outgoing.subject
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = outgoing.message_id
    if outgoing.in_reply_to:
        message["In-Reply-To"] = outgoing.in_reply_to
    references = list(dict.fromkeys(outgoing.references))
    if references:
        message["References"] = " ".join(references)
    if outgoing.reply_to:
        message["Reply-To"] = outgoing.reply_to
    if outgoing.auto_submitted:
        message["Auto-Submitted"] = outgoing.auto_submitted
    for name, value in outgoing.extra_headers:
        message[name] = value
    message.set_content(outgoing.body_text or " ")
    if outgoing.body_html:
        message.add_alternative(outgoing.body_html, subtype="html")
    return message.as_bytes(policy=policy.SMTP)


def queue_outbound(
    session: Session,
    *,
    org_id: int,
    kind: str,
    outgoing: Outgoing,
    raw: bytes,
    record: RecordRef | None = None,
    inbound_id: int | None = None,
) -> OutboundMail:
    """The composed message as a queued OutboundMail row, flushed, not committed: the
    caller commits it with whatever caused it, then enqueues "send_outbound"."""
    row = OutboundMail(
        organization_id=org_id,
        kind=kind,
        record_type=record.type if record else None,
        record_id=record.id if record else None,
        inbound_id=inbound_id,
        from_address=outgoing.sender[1],
        # As the envelope names them (the send job's RCPT TO).
        to_addresses=[wire_address(address) for _, address in outgoing.to],
        # The column's bound (RFC 5322's line length); the message keeps the whole subject.
        subject=outgoing.subject[:998],
        message_id=outgoing.message_id,
        raw=raw,
        status=OutboundStatus.QUEUED,
        attempts=0,
    )
    session.add(row)
    session.flush()
    return row

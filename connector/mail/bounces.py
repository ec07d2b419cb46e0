"""Bounces: telling a delivery failure from a person's mail, and which addresses failed.

A bounce opens nothing. Standard ones are RFC 3464 delivery-status reports; many servers
still send their own plain-text formats (qmail's "failure notice", Exchange's
"Undeliverable", Yahoo, Postfix, Sendmail), from MAILER-DAEMON or postmaster. flufl.bounce
(Mailman's bounce detectors) reads the failed addresses out of all of them; whether a
message is a bounce at all is decided here, from its sender, subject and content type, so
that an ordinary message that happens to quote an address is never taken for one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses, parseaddr

from flufl.bounce import all_failures

from connector.mail.loops import header_text, is_auto_reply

# The local parts servers send failures from ("MAILER-DAEMON@", "postmaster@",
# Alt-N MDaemon's "MDaemon@", "Mail.Delivery.System@").
_DAEMONS = re.compile(
    r"^(mailer-daemon|mailer_daemon|maildaemon|mdaemon|mail\.delivery\.system)$", re.IGNORECASE
)
# postmaster@ is a person too (RFC 5321 4.5.1): its mail is a bounce only with more signs.
_POSTMASTER = re.compile(r"^postmaster$", re.IGNORECASE)
# What bounces are called, at the start of their subject (a person's "Fwd: Undeliverable"
# or "Re: failure notice" is mail about a bounce, not one).
_SUBJECTS = re.compile(
    r"^\s*("
    r"undeliverable|undelivered|undeliverd|non[- ]?delivery|failure notice|failure delivery|"
    r"returned mail|mail delivery fail|mail delivery problem|mail delivery warning|"
    r"delivery (status )?notification|delivery report|delivery failure|delivery failed|"
    r"delivery problem|message delivery failure|permanent delivery failure|"
    r"mail could not be delivered|mail not delivered|could not deliver|mail error|"
    r"failed mail|delayed mail|message delayed|mail system error|warning: message"
    r")",
    re.IGNORECASE,
)
# The parts a bounce returns the failed message (or its headers) in.
_RETURNED_PARTS = ("message/rfc822", "text/rfc822-headers", "message/delivery-status")
_REASON_LIMIT = 500


@dataclass(frozen=True)
class Bounce:
    """What a bounce says: the addresses that failed for good, those only delayed, and why
    (a Diagnostic-Code or Status of the report, else its subject)."""

    failed: list[str]
    delayed: list[str]
    reason: str


def _header(message: Message, name: str) -> str:
    return header_text(message, name)


def _from_address(message: Message) -> str:
    return parseaddr(_header(message, "From"))[1]


def is_null_sender(message: Message, envelope_from: str | None) -> bool:
    """Sent from the null return path <>, as bounces are (RFC 5321 4.5.5); None: unknown
    envelope (an IMAP message), then the Return-Path header says."""
    if envelope_from is not None:
        return envelope_from.strip() in ("", "<>")
    return_path = _header(message, "Return-Path").strip()
    return return_path == "<>"


def is_delivery_report(message: Message) -> bool:
    """An RFC 3464 delivery-status report (multipart/report; report-type=delivery-status)."""
    if message.get_content_type() != "multipart/report":
        return False
    report_type = message.get_param("report-type")
    if isinstance(report_type, str) and report_type.lower() == "delivery-status":
        return True
    # Some servers leave the parameter out; the delivery-status part says it all the same.
    return any(part.get_content_type() == "message/delivery-status" for part in message.walk())


def _from_local_part(message: Message) -> str:
    return _from_address(message).partition("@")[0].strip('"')


def from_daemon(message: Message) -> bool:
    """From MAILER-DAEMON or the like, or from the empty address ("<>")."""
    if not _from_address(message):
        return "<>" in _header(message, "From")
    return _DAEMONS.match(_from_local_part(message)) is not None


def from_postmaster(message: Message) -> bool:
    return _POSTMASTER.match(_from_local_part(message)) is not None


def has_bounce_subject(message: Message) -> bool:
    return _SUBJECTS.match(_header(message, "Subject")) is not None


def returns_a_message(message: Message) -> bool:
    """Carries the message it failed to deliver (or its headers), as bounces do."""
    return any(part.get_content_type() in _RETURNED_PARTS for part in message.walk())


def _failures(message: Message) -> tuple[list[str], list[str]]:
    """The addresses that failed for good and the delayed ones, lower-cased, sorted."""
    temporary, permanent = all_failures(message)

    def clean(found: frozenset[bytes]) -> list[str]:
        return sorted({a.decode("utf-8", "replace").strip().lower() for a in found if a})

    return clean(permanent), clean(temporary)


def is_bounce(message: Message, envelope_from: str | None = None) -> bool:
    """Whether the message reports that mail could not be delivered.

    In order: a delivery-status report is one; an auto-reply ("Out of office",
    Auto-Submitted: auto-replied) from a person is not; mail from a mailer daemon is one;
    from postmaster, one with a bounce's subject; else a bounce's subject is one when the
    message also returns the failed mail, names failed addresses or comes from the null
    sender.
    """
    if is_delivery_report(message):
        return True
    if from_daemon(message):
        return True
    if is_auto_reply(message):
        return False
    subject = has_bounce_subject(message)
    if subject and from_postmaster(message):
        return True
    if not subject:
        return False
    if is_null_sender(message, envelope_from) or returns_a_message(message):
        return True
    failed, delayed = _failures(message)
    return bool(failed or delayed)


def _report_reason(message: Message, failed: list[str]) -> str | None:
    """The Diagnostic-Code (else Status) of the report's first failed recipient."""
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        # The delivery-status part's "payload" is its blocks of fields, one per recipient.
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            continue
        for block in blocks:
            if not isinstance(block, Message):
                continue
            recipient = _header(block, "Final-Recipient") or _header(block, "Original-Recipient")
            addresses = [a.lower() for _, a in getaddresses([recipient.partition(";")[2]])]
            if failed and addresses and not set(addresses) & set(failed):
                continue
            diagnostic = _header(block, "Diagnostic-Code").partition(";")[2].strip()
            status = _header(block, "Status").strip()
            if diagnostic or status:
                return " ".join((diagnostic or f"status {status}").split())
    return None


def read_bounce(message: Message, envelope_from: str | None = None) -> Bounce | None:
    """The bounce's failed addresses and reason; None when the message is no bounce."""
    if not is_bounce(message, envelope_from):
        return None
    failed, delayed = _failures(message)
    subject = " ".join(_header(message, "Subject").split())
    reason = _report_reason(message, failed) or subject or "delivery failed"
    return Bounce(failed=failed, delayed=delayed, reason=reason[:_REASON_LIMIT])

"""Mail loops and robots: which messages are never answered, and which are our own mail
coming back.

Pure functions over the headers and the envelope, so that every rule is tested on its own.
An acknowledgment answering a robot (an out-of-office reply, a mailing list, a bounce, our
own alias) is how two systems mail each other forever (RFC 3834 section 2).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from email.header import decode_header, make_header
from email.message import Message
from email.utils import parseaddr

from connector.addresses import domain_of
from connector.mail.reply_addresses import looks_like_reply_address

# Precedence values of mass and automatic mail (RFC 3834 3.1.8; "auto_reply" is what
# vacation programs put on their answers).
_ROBOT_PRECEDENCE = {"bulk", "list", "junk", "auto_reply"}
# Headers vacation and ticket systems set on their answers.
_AUTO_REPLY_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Autorespond-Id")
# Subjects of out-of-office answers from servers that set none of the headers.
_AUTO_REPLY_SUBJECT = re.compile(
    r"^\s*(out of (the )?office|automatic reply|auto[- ]?reply|auto[- ]?response|"
    r"autoreply|abwesenheitsnotiz|réponse automatique)",
    re.IGNORECASE,
)
# A message that went through more servers than this is going round in circles (RFC 5321
# 6.3 suggests counting Received headers; Sendmail gives up at 25 hops, Postfix at 50).
MAX_HOPS = 30
# The mark on a relay (connector.mail.relays): a relayed message that comes back to the
# gateway (a follower's mailbox forwarding to the alias) is our own mail, never relayed again.
RELAY_HEADER = "X-Connector-Relay"


def header_text(message: Message, name: str) -> str:
    """A header's value as text (RFC 2047 words decoded), "" when absent or undecodable."""
    value = message.get(name)
    if value is None:
        return ""
    try:
        return str(make_header(decode_header(str(value))))
    except (LookupError, UnicodeError, ValueError):
        # An unknown charset or a broken encoded word: the raw text is still better than none.
        return str(value)


def _auto_submitted(message: Message) -> str:
    """The Auto-Submitted keyword ("no", "auto-replied", "auto-generated"), lower case."""
    return header_text(message, "Auto-Submitted").split(";")[0].strip().lower()


def is_auto_reply(message: Message) -> bool:
    """An automatic answer to a message: an out-of-office or a ticket system's receipt."""
    if _auto_submitted(message) == "auto-replied":
        return True
    if any(message.get(name) is not None for name in _AUTO_REPLY_HEADERS):
        return True
    if header_text(message, "Precedence").strip().lower() == "auto_reply":
        return True
    return _AUTO_REPLY_SUBJECT.match(header_text(message, "Subject")) is not None


def is_null_return_path(message: Message, envelope_from: str | None) -> bool:
    """Sent from the empty return path <> (bounces and other notices that must not be
    answered); None: the envelope is unknown (an IMAP message), the Return-Path header says."""
    if envelope_from is not None:
        return envelope_from.strip() in ("", "<>")
    return header_text(message, "Return-Path").strip() == "<>"


def why_not_answer(
    message: Message,
    *,
    envelope_from: str | None,
    own_domain: str | None,
    bounce: bool,
) -> str | None:
    """Why the message must get no automatic answer, or None when it may get one."""
    if bounce:
        return "a bounce"
    auto_submitted = _auto_submitted(message)
    if auto_submitted and auto_submitted != "no":
        return f"Auto-Submitted: {auto_submitted}"
    precedence = header_text(message, "Precedence").strip().lower()
    if precedence in _ROBOT_PRECEDENCE:
        return f"Precedence: {precedence}"
    for name in _AUTO_REPLY_HEADERS:
        if message.get(name) is not None:
            return name
    if message.get("List-Id") is not None:
        return "List-Id (a mailing list)"
    if is_null_return_path(message, envelope_from):
        return "an empty return path"
    sender = parseaddr(header_text(message, "From"))[1].lower()
    if not sender:
        return "no sender"
    if own_domain and domain_of(sender) == own_domain.lower():
        return "from our own mail domain"
    if is_auto_reply(message):
        return "an automatic reply"
    return None


def may_answer(
    message: Message, *, envelope_from: str | None, own_domain: str | None, bounce: bool
) -> bool:
    return (
        why_not_answer(message, envelope_from=envelope_from, own_domain=own_domain, bounce=bounce)
        is None
    )


def loop_reason(
    message: Message, *, own_domain: str | None, own_addresses: Collection[str]
) -> str | None:
    """Why the message is our own mail come back round (it is then dropped), or None.

    From one of our aliases or reply addresses (an alias that forwards to another, or an
    acknowledgment that came back), with X-Loop naming one of them (procmail's and
    Zammad's mark), a relay of ours (RELAY_HEADER), or through more than MAX_HOPS servers.
    """
    if message.get(RELAY_HEADER) is not None:
        return f"{RELAY_HEADER}: a relay of ours"
    own = {a.lower() for a in own_addresses}
    sender = parseaddr(header_text(message, "From"))[1].lower()
    if sender in own:
        return f"from our own address {sender}"
    if own_domain and domain_of(sender) == own_domain.lower() and looks_like_reply_address(sender):
        return f"from our own reply address {sender}"
    for value in message.get_all("X-Loop") or []:
        marked = parseaddr(str(value))[1].lower()
        if marked in own:
            return f"X-Loop: {marked}"
    hops = len(message.get_all("Received") or [])
    if hops > MAX_HOPS:
        return f"{hops} Received headers"
    return None

"""The user's own mailbox, whichever sends (Gmail, Exchange): what the replies service asks
of it, and what sending as the user can fail with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class ConsentRequired(Exception):
    """The user must sign in (again) and allow sending."""


class SendUnconfirmed(Exception):
    """The send went out and no answer came back: the reply may have been sent.

    Never retried and never logged: look in Sent before sending it again.
    """


@dataclass(frozen=True)
class Reply:
    """The rendered template, to send as a reply in the thread of the message replied to."""

    body_html: str
    body_text: str


@dataclass(frozen=True)
class SentReply:
    """The reply as the mailbox sent it, for logging it on the record."""

    subject: str
    # The Message-ID it travels with, so that a later log of the same email (from Sent)
    # finds this one instead of making another.
    message_id: str | None = None
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    # The whole message (RFC 822) as sent, when the connector built it (Gmail): logged as is.
    raw: bytes | None = None


class Mailbox(Protocol):
    def send(self, message_id: str, reply: Reply) -> SentReply:
        """Send `reply` now in the thread of `message_id` (the mailbox's own id of the
        message replied to), as the user.

        Raises ConsentRequired when the user has not allowed sending (nothing was sent),
        SendUnconfirmed when the send got no answer (it may have gone), and the provider's
        own errors when it failed before sending.
        """
        ...

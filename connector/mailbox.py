"""What sending as the user can fail with, whichever mailbox (Gmail, Exchange) sends."""

from __future__ import annotations


class ConsentRequired(Exception):
    """The user must sign in (again) and allow sending."""


class SendUnconfirmed(Exception):
    """The send went out and no answer came back: the reply may have been sent.

    Never retried and never logged: look in Sent before sending it again.
    """

"""What sending as the user can fail with, whichever mailbox (Gmail, Exchange) sends."""

from __future__ import annotations


class ConsentRequired(Exception):
    """The user must sign in (again) and allow sending."""

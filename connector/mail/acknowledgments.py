"""Acknowledgments: placeholder, filled in by the outbound part of issue 17 (the interface
the routing job calls is fixed here)."""

from __future__ import annotations

from connector.activities.email_data import EmailData
from connector.mail.models import Alias, InboundMessage, OutboundMail
from connector.orgs.context import Ctx
from connector.records.refs import RecordRef


def queue_acknowledgment(
    ctx: Ctx,
    *,
    alias: Alias,
    inbound: InboundMessage,
    email: EmailData,
    record: RecordRef,
    secret_key: str,
) -> OutboundMail | None:
    """Compose the alias's acknowledgment of `email` (which opened `record`) as an
    OutboundMail row, queued, flushed, not committed; None when there is nothing to send."""
    return None

"""An email as the services see it, whichever way it arrived (JSON fields or raw MIME)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True)
class AttachmentData:
    filename: str
    content_type: str
    content: bytes
    # The part's Content-ID without angle brackets, for inline images ("cid:" URLs).
    content_id: str | None = None

    @property
    def size(self) -> int:
        return len(self.content)


@dataclass(frozen=True)
class EmailData:
    # Message-ID with its angle brackets, as in the header; None when the email has none.
    message_id: str | None
    subject: str
    # "Name <address>" as in the header; `from_email` is the bare lower-cased address.
    from_header: str
    from_email: str | None
    from_name: str
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    date: dt.datetime | None = None
    # Sanitized HTML (safe to show) and plain text; each is filled in from the
    # other when the email had only one.
    body_html: str = ""
    body_text: str = ""
    attachments: list[AttachmentData] = field(default_factory=list)

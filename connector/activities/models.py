"""Activities: the timeline of a record (logged emails and notes), and attachments."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from connector.orm import Base, Timestamped, utcnow
from connector.records.models import OrgOwned, RecordType


class ActivityKind(enum.StrEnum):
    EMAIL = "email"
    NOTE = "note"


class Activity(OrgOwned, Timestamped, Base):
    __tablename__ = "activities"
    __table_args__ = (
        # One activity per email and organization: logging the same Message-ID
        # again links the existing activity instead of writing a second one.
        Index(
            "uq_activities_email_message_id",
            "organization_id",
            "message_id",
            unique=True,
            sqlite_where=text("message_id IS NOT NULL"),
            postgresql_where=text("message_id IS NOT NULL"),
        ),
    )

    kind: Mapped[ActivityKind] = mapped_column(String(10))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    occurred_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    subject: Mapped[str] = mapped_column(String(998), default="")
    message_id: Mapped[str | None] = mapped_column(String(998))
    from_address: Mapped[str] = mapped_column(String(998), default="")
    to_addresses: Mapped[list[str]] = mapped_column(JSON, default=list)
    cc_addresses: Mapped[list[str]] = mapped_column(JSON, default=list)
    body_html: Mapped[str] = mapped_column(Text, default="")
    body_text: Mapped[str] = mapped_column(Text, default="")
    # Attachments left out because the email was over the size cap: name, type, size.
    omitted_attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)

    links: Mapped[list[ActivityLink]] = relationship(
        back_populates="activity", cascade="all, delete-orphan", lazy="selectin"
    )
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="activity",
        cascade="all, delete-orphan",
        order_by="Attachment.id",
        lazy="selectin",
    )


class ActivityLink(Base):
    __tablename__ = "activity_links"
    __table_args__ = (
        UniqueConstraint("activity_id", "record_type", "record_id"),
        Index("ix_activity_links_record", "organization_id", "record_type", "record_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"))
    record_type: Mapped[RecordType] = mapped_column(String(20))
    record_id: Mapped[int]

    activity: Mapped[Activity] = relationship(back_populates="links")


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(
        ForeignKey("activities.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(500))
    content_type: Mapped[str] = mapped_column(String(200))
    size: Mapped[int]
    # Set for inline parts (images the HTML body shows through "cid:" URLs).
    content_id: Mapped[str | None] = mapped_column(String(500))
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)

    activity: Mapped[Activity] = relationship(back_populates="attachments")

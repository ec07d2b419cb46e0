"""The audit log: who did what to the organization's people, keys and records, and when."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from connector.orm import Base, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_org_at", "organization_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # None for what concerns no one organization (a command run for all of them).
    organization_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Kept as it was ("ann@acme.test", "connector purge"), so that it outlives the user.
    actor: Mapped[str] = mapped_column(String(320), default="")
    # What was done: "user.deactivated", "key.revoked", "record.merged", ...
    action: Mapped[str] = mapped_column(String(64))
    # What it was done to: "user:12", "key:5", "contact:3".
    target: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

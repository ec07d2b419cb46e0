"""Mail accounts linked to connector users, with their refresh tokens encrypted at rest."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import JSON, ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from connector.orgs.models import User
from connector.orm import Base, Timestamped, utcnow


class Provider(enum.StrEnum):
    GOOGLE = "google"
    MICROSOFT = "microsoft"


class LinkedAccount(Timestamped, Base):
    __tablename__ = "linked_accounts"
    __table_args__ = (UniqueConstraint("provider", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    provider: Mapped[Provider] = mapped_column(String(20))
    # The provider's stable ID of the account (Google `sub`, Microsoft `oid`).
    subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(320))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Fernet ciphertext: unreadable without the encryption key.
    refresh_token_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    user: Mapped[User] = relationship()

"""Organizations, the people in them, and their API keys."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from connector.orm import Base, Timestamped


class Role(enum.StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


class Organization(Timestamped, Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # When set, Entra ID tokens from this tenant (and no other) reach this organization.
    entra_tenant_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The domain its team addresses (sales@, support@) and reply addresses are at; mail to
    # any other address of it is refused by the gateway. One organization per domain.
    mail_domain: Mapped[str | None] = mapped_column(String(253), unique=True)
    # Bumped by every committed write to the organization when there is no Redis: the
    # generation of its cached lookups that every process (web, worker, mail gateway)
    # reads and moves, where an in-process counter would be one process's own.
    lookup_generation: Mapped[int] = mapped_column(default=0, server_default="0")


class SignInDomain(Timestamped, Base):
    """An email domain whose people become users of the organization when they first sign in.

    A domain belongs to one organization at most, so a sign-in never has to choose.
    """

    __tablename__ = "sign_in_domains"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    domain: Mapped[str] = mapped_column(String(253), unique=True)

    organization: Mapped[Organization] = relationship(lazy="joined")


class User(Timestamped, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    # Lower-cased; one connector user per mailbox address, across organizations,
    # because mail clients identify people by address alone.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(String(20), default=Role.MEMBER)
    # Set when the person leaves: their keys, tokens, sessions and links stop working at
    # once; what they did stays.
    deactivated_at: Mapped[dt.datetime | None]

    organization: Mapped[Organization] = relationship(lazy="joined")

    @property
    def active(self) -> bool:
        """Not deactivated: their keys, tokens, sessions and links are honoured."""
        return self.deactivated_at is None


class ApiKey(Timestamped, Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # SHA-256 of the key: keys are 256-bit random strings, so a fast hash is
    # enough and lets every request find its key by an indexed equality.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(200), default="")
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]

    user: Mapped[User] = relationship(lazy="joined")

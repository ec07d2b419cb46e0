"""The mail side of an organization: aliases, received messages, polled mailboxes, sent mail."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from connector.orgs.models import Organization, User
from connector.orm import Base, Timestamped, utcnow
from connector.records.models import Contact, OrgOwned, RecordType


class Creates(enum.StrEnum):
    """What mail to an alias opens when it belongs to no record yet."""

    LEAD = "lead"
    TICKET = "ticket"
    TASK = "task"


class Accept(enum.StrEnum):
    """Whose mail an alias takes: anyone's, only known contacts', or only the team's."""

    EVERYONE = "everyone"
    CONTACTS = "contacts"
    USERS = "users"


class Alias(OrgOwned, Timestamped, Base):
    """A team address of the organization's mail domain (sales@D, support@D)."""

    __tablename__ = "mail_aliases"

    # Lower-cased, whole: "sales@example.com". Unique across organizations, as a domain
    # belongs to one organization.
    address: Mapped[str] = mapped_column(String(320), unique=True)
    creates: Mapped[Creates] = mapped_column(String(10))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    accept: Mapped[Accept] = mapped_column(String(10), default=Accept.EVERYONE)
    auto_reply: Mapped[bool] = mapped_column(default=False)
    # The template the acknowledgment is rendered from; None with auto_reply: the built-in one.
    auto_reply_template_id: Mapped[int | None] = mapped_column(
        ForeignKey("email_templates.id", ondelete="SET NULL")
    )

    organization: Mapped[Organization] = relationship(lazy="joined")
    owner: Mapped[User | None] = relationship(lazy="joined")


class InboundStatus(enum.StrEnum):
    RECEIVED = "received"  # stored, waiting for (or in) the routing job
    DONE = "done"  # routed: appended, created, or recognised as a bounce or a loop
    HELD = "held"  # kept aside (a sender over the cap): opens nothing until released
    FAILED = "failed"  # the routing job failed after its last try


class InboundMessage(OrgOwned, Base):
    """A message as it arrived, kept whole before anything is done with it: a 250 from the
    gateway (or a fetched IMAP UID) means this row is committed."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        Index("ix_inbound_messages_status", "status", "received_at"),
        # The sender cap: the records a sender opened lately, within the organization.
        Index("ix_inbound_messages_sender", "organization_id", "sender", "received_at"),
        # One row per IMAP message: a poll that runs again never stores it twice.
        UniqueConstraint("mailbox_id", "imap_uidvalidity", "imap_uid"),
    )

    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(10))  # "smtp" or "imap"
    mailbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("mail_mailboxes.id", ondelete="SET NULL")
    )
    imap_uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    imap_uid: Mapped[int | None] = mapped_column(BigInteger)
    # The envelope: MAIL FROM ("" for the null sender <>) and the accepted recipients.
    envelope_from: Mapped[str] = mapped_column(String(998), default="")
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    raw: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    size: Mapped[int] = mapped_column(default=0)

    status: Mapped[InboundStatus] = mapped_column(String(10), default=InboundStatus.RECEIVED)
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[dt.datetime | None]
    # Released by a person from HELD (`connector mail held --release`): routing does not
    # hold it back again for its sender's cap.
    cap_exempt: Mapped[bool] = mapped_column(default=False)

    # Filled by routing, for the lists people read (and the sender cap).
    sender: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(998), default="")
    message_id: Mapped[str | None] = mapped_column(String(998))
    alias_id: Mapped[int | None] = mapped_column(ForeignKey("mail_aliases.id", ondelete="SET NULL"))
    # What routing did: created, appended, bounce, loop, refused, held.
    outcome: Mapped[str | None] = mapped_column(String(20))
    record_type: Mapped[RecordType | None] = mapped_column(String(20))
    record_id: Mapped[int | None]
    activity_id: Mapped[int | None] = mapped_column(
        ForeignKey("activities.id", ondelete="SET NULL")
    )

    alias: Mapped[Alias | None] = relationship(lazy="joined")


class Mailbox(OrgOwned, Timestamped, Base):
    """An IMAP folder polled for an alias (a Workspace or Microsoft 365 sales@ mailbox)."""

    __tablename__ = "mail_mailboxes"

    alias_id: Mapped[int] = mapped_column(ForeignKey("mail_aliases.id", ondelete="CASCADE"))
    # imap[s]://user@host[:port]/FOLDER, without the password.
    imap_url: Mapped[str] = mapped_column(String(1000))
    # The password, encrypted as linked accounts' tokens are (accounts.crypto).
    password_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    # Where polling stands: UIDs above last_uid are new, while UIDVALIDITY stays the same.
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    last_polled_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)

    alias: Mapped[Alias] = relationship(lazy="joined")


class OutboundStatus(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


class OutboundMail(OrgOwned, Base):
    """A message the connector sends (an acknowledgment now), kept until it is sent: the row
    is written in the same transaction as what caused it, then a job sends it."""

    __tablename__ = "outbound_mails"
    __table_args__ = (Index("ix_outbound_mails_status", "status", "created_at"),)

    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(20))  # "acknowledgment", "message", "relay"
    # Who wrote it ("message"); None for what the connector sends by itself.
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Where it is logged on the record (a message from the record, an acknowledgment).
    activity_id: Mapped[int | None] = mapped_column(
        ForeignKey("activities.id", ondelete="SET NULL")
    )
    record_type: Mapped[RecordType | None] = mapped_column(String(20))
    record_id: Mapped[int | None]
    inbound_id: Mapped[int | None] = mapped_column(
        ForeignKey("inbound_messages.id", ondelete="SET NULL")
    )
    from_address: Mapped[str] = mapped_column(String(320))
    to_addresses: Mapped[list[str]] = mapped_column(JSON, default=list)
    subject: Mapped[str] = mapped_column(String(998), default="")
    message_id: Mapped[str] = mapped_column(String(998))
    # The message as composed, unsigned: the DKIM signature is added as it is sent.
    raw: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    status: Mapped[OutboundStatus] = mapped_column(String(10), default=OutboundStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[dt.datetime | None]
    # Until when a sending job holds the row (so that two jobs for the same row never both
    # send it); after a try it says when that try ended, for spotting lost retries.
    claimed_until: Mapped[dt.datetime | None]


class Follower(OrgOwned, Base):
    """Someone who follows a record (contact, company, lead, ticket): a user of the
    organization, who gets each new inbound message on it relayed by email, or a contact
    (a customer's colleague), who gets what the team writes from the record.

    The record's owner follows it without being added (a row is made for them the first
    time followers are read or mail is relayed); whoever writes from the record follows it.
    Unfollowing keeps the row with `active` false, so that the owner, once they have
    unfollowed, is not made a follower again behind their back.
    """

    __tablename__ = "followers"
    __table_args__ = (
        Index("ix_followers_record", "organization_id", "record_type", "record_id"),
        UniqueConstraint("record_type", "record_id", "user_id"),
        UniqueConstraint("record_type", "record_id", "contact_id"),
        CheckConstraint("(user_id IS NULL) <> (contact_id IS NULL)", name="one_of_user_or_contact"),
    )

    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    record_type: Mapped[RecordType] = mapped_column(String(20))
    record_id: Mapped[int]
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    active: Mapped[bool] = mapped_column(default=True)

    user: Mapped[User | None] = relationship(lazy="joined")
    contact: Mapped[Contact | None] = relationship(lazy="joined")


class Heartbeat(Base):
    """When a long-running process (the mail gateway, the worker) last said it was alive,
    for /readyz and `connector mail queue`."""

    __tablename__ = "heartbeats"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

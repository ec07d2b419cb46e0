"""The customer records: companies, contacts, leads, tickets and tasks."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship, validates

from connector.orm import Base, Timestamped, utcnow


class RecordType(enum.StrEnum):
    """What an activity or a task can be about."""

    CONTACT = "contact"
    COMPANY = "company"
    LEAD = "lead"
    TICKET = "ticket"


class LeadStage(enum.StrEnum):
    NEW = "new"
    QUALIFIED = "qualified"
    PROPOSITION = "proposition"
    WON = "won"
    LOST = "lost"


CLOSED_LEAD_STAGES = (LeadStage.WON, LeadStage.LOST)


class TicketStatus(enum.StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"


CLOSED_TICKET_STATUSES = (TicketStatus.RESOLVED, TicketStatus.CLOSED)


class TicketPriority(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class OrgOwned:
    """Every record belongs to exactly one organization."""

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)


class Lifecycle:
    """What contacts, companies, leads and tickets share: an owner, a version, an archive mark.

    `version` counts the changes of the record's own fields (an email logged on it is no
    change of the record): it is the ETag of the API, and every UPDATE of the row is made
    on the condition that the version read is still the stored one (the mapper's
    version_id_col), so that of two concurrent edits the second fails instead of
    silently undoing the first. The services set it themselves, only when a field changed.
    """

    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    version: Mapped[int] = mapped_column(default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Archived records are out of lookups, searches, cards and lists, and can be restored
    # until `connector purge` removes them.
    archived_at: Mapped[dt.datetime | None]

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"version_id_col": cls.version, "version_id_generator": False}


class Company(Lifecycle, OrgOwned, Timestamped, Base):
    __tablename__ = "companies"

    name: Mapped[str] = mapped_column(String(200))
    website: Mapped[str | None] = mapped_column(String(500))
    phone: Mapped[str | None] = mapped_column(String(50))

    domains: Mapped[list[CompanyDomain]] = relationship(
        back_populates="company",
        cascade="all, delete-orphan",
        order_by="CompanyDomain.id",
        lazy="selectin",
    )


class CompanyDomain(Base):
    __tablename__ = "company_domains"
    __table_args__ = (UniqueConstraint("organization_id", "domain"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), index=True
    )
    # Lower-cased, without a leading "@" or "www.".
    domain: Mapped[str] = mapped_column(String(253))

    company: Mapped[Company] = relationship(back_populates="domains")


def name_key(name: str) -> str:
    """A name as duplicates are found by: any case, any spacing ("ana  LIMA" is "Ana Lima")."""
    return " ".join(name.casefold().split())[:200]


class Contact(Lifecycle, OrgOwned, Timestamped, Base):
    __tablename__ = "contacts"
    __table_args__ = (
        # Possible duplicates: the contacts of the same name key, then of the same company.
        Index("ix_contacts_org_name_key", "organization_id", "name_key"),
    )

    name: Mapped[str] = mapped_column(String(200))
    # name_key(name), kept by the validator below whenever the name is set.
    name_key: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str | None] = mapped_column(String(50))
    job_title: Mapped[str | None] = mapped_column(String(200))
    company_id: Mapped[int | None] = mapped_column(
        ForeignKey("companies.id", ondelete="SET NULL"), index=True
    )

    company: Mapped[Company | None] = relationship(lazy="joined")
    emails: Mapped[list[ContactEmail]] = relationship(
        back_populates="contact",
        cascade="all, delete-orphan",
        order_by="ContactEmail.id",
        lazy="selectin",
    )

    @validates("name")
    def _keep_name_key(self, _field: str, name: str) -> str:
        self.name_key = name_key(name)
        return name


class ContactEmail(Base):
    __tablename__ = "contact_emails"
    # The lookup's index: an address is found by equality within its organization.
    __table_args__ = (UniqueConstraint("organization_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    # Stored lower-cased, so that a case-insensitive match is an equality.
    email: Mapped[str] = mapped_column(String(320))
    # Set when a bounce said mail to this address failed (cleared when mail from it comes in).
    bounced_at: Mapped[dt.datetime | None]
    bounce_reason: Mapped[str | None] = mapped_column(String(500))

    contact: Mapped[Contact] = relationship(back_populates="emails")


class CustomerWork(Lifecycle):
    """What leads and tickets share: the contact and company they are for."""

    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id", ondelete="SET NULL"))

    @declared_attr
    def contact(cls) -> Mapped[Contact | None]:
        return relationship(lazy="joined")

    @declared_attr
    def company(cls) -> Mapped[Company | None]:
        return relationship(lazy="joined")

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        # A card lists a contact's or a company's leads and tickets: both columns
        # in one index, so that no planner settles for the organization alone.
        table = cls.__tablename__  # type: ignore[attr-defined]
        return (
            Index(f"ix_{table}_org_contact", "organization_id", "contact_id"),
            Index(f"ix_{table}_org_company", "organization_id", "company_id"),
            *getattr(cls, "extra_table_args", ()),
        )


class Lead(CustomerWork, OrgOwned, Timestamped, Base):
    __tablename__ = "leads"
    extra_table_args = (
        CheckConstraint("probability >= 0 AND probability <= 100", name="probability_range"),
        Index("ix_leads_org_external_id", "organization_id", "external_id"),
    )

    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    stage: Mapped[LeadStage] = mapped_column(String(20), default=LeadStage.NEW)
    expected_revenue: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    probability: Mapped[int] = mapped_column(default=10)
    # Expected, then (once won or lost) actual.
    close_date: Mapped[dt.date | None]
    # The lead's id in the system it was imported from, so that importing again updates it.
    external_id: Mapped[str | None] = mapped_column(String(200))
    lost_reason: Mapped[str | None] = mapped_column(String(500))


class Ticket(CustomerWork, OrgOwned, Timestamped, Base):
    __tablename__ = "tickets"

    subject: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[TicketStatus] = mapped_column(String(20), default=TicketStatus.NEW)
    priority: Mapped[TicketPriority] = mapped_column(String(20), default=TicketPriority.NORMAL)


class Task(OrgOwned, Timestamped, Base):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_record", "organization_id", "record_type", "record_id"),
        Index("ix_tasks_assignee_open", "assignee_id", "done", "due_date"),
    )

    title: Mapped[str] = mapped_column(String(300))
    due_date: Mapped[dt.date | None]
    done: Mapped[bool] = mapped_column(default=False)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # The record the task is about, by type and id (like Odoo's res_model/res_id):
    # one column pair serves every record type.
    record_type: Mapped[RecordType | None] = mapped_column(String(20))
    record_id: Mapped[int | None]


class RecordChange(Base):
    """One change of a record's field (or its merge, archive, restore): its history.

    The values are JSON as the API shows them; the labels are what a person reads (an
    owner's or a company's name), taken when the change was made, as it was then.
    """

    __tablename__ = "record_changes"
    __table_args__ = (
        Index("ix_record_changes_record", "organization_id", "record_type", "record_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    record_type: Mapped[RecordType] = mapped_column(String(20))
    record_id: Mapped[int]
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Kept as it was, so that the history still names someone who has left.
    by_name: Mapped[str] = mapped_column(String(200), default="")
    field: Mapped[str] = mapped_column(String(50))
    from_value: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    to_value: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    from_label: Mapped[str | None] = mapped_column(String(500))
    to_label: Mapped[str | None] = mapped_column(String(500))

"""Changing records: their fields, a lead's stage, a ticket's status, archive and restore.

Every change is checked whole before anything is written, goes into the record's history,
and moves its version on. A caller that read an older version (If-Match) is refused with
PreconditionFailed and nothing is written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy.orm.exc import StaleDataError

from connector.errors import Forbidden, PreconditionFailed
from connector.orgs.context import Ctx
from connector.orgs.models import Role, User
from connector.orm import utcnow
from connector.records.history import record_change
from connector.records.models import (
    Company,
    CompanyDomain,
    Contact,
    ContactEmail,
    Lead,
    LeadStage,
    RecordType,
    Ticket,
)
from connector.records.refs import RecordRef
from connector.records.service import (
    Record,
    check_domains_free,
    check_emails_free,
    check_lost_reason,
    clean_domains,
    clean_emails,
    get_record,
    get_user_in_org,
)

# The fields a PATCH may change, per record type (what the API's schemas accept).
EDITABLE: dict[RecordType, tuple[str, ...]] = {
    RecordType.CONTACT: ("name", "emails", "phone", "job_title", "company_id", "owner_id"),
    RecordType.COMPANY: ("name", "domains", "website", "phone", "owner_id"),
    RecordType.LEAD: (
        "title",
        "description",
        "stage",
        "expected_revenue",
        "probability",
        "close_date",
        "lost_reason",
        "contact_id",
        "company_id",
        "owner_id",
    ),
    RecordType.TICKET: (
        "subject",
        "description",
        "status",
        "priority",
        "contact_id",
        "company_id",
        "owner_id",
    ),
}


# The version a caller read (an If-Match may name several: any one matching will do), or
# None for no condition.
ExpectedVersion = int | frozenset[int] | None


def version_matches(record: Record, expected_version: ExpectedVersion) -> None:
    """PreconditionFailed unless the caller read the stored version (None: no condition)."""
    if expected_version is None:
        return
    wanted = expected_version if isinstance(expected_version, frozenset) else {expected_version}
    if record.version not in wanted:
        kind = RecordType(_type_of(record)).value
        named = ", ".join(str(v) for v in sorted(wanted))
        raise PreconditionFailed(
            f"This {kind} was changed since you read it (version {named}; it is "
            f"at version {record.version} now). Nothing was saved: read it again and retry.",
            {"version": [str(record.version)]},
        )


def _type_of(record: Record) -> str:
    return {Contact: "contact", Company: "company", Lead: "lead", Ticket: "ticket"}[type(record)]


def _json(value: Any) -> Any:
    """A value as the API shows it, for the history."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return str(value)  # a StrEnum's plain text
    return value


def _user_label(ctx: Ctx, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    user = ctx.session.get(User, user_id)
    return (user.name or user.email) if user is not None else f"#{user_id}"


def record_label(ctx: Ctx, record_type: RecordType) -> Callable[[int | None], str | None]:
    def label(record_id: int | None) -> str | None:
        if record_id is None:
            return None
        record = get_record(
            ctx.session, ctx.org_id, RecordRef(record_type, record_id), include_archived=True
        )
        return str(record.name)

    return label


class RecordEdit:
    """The changes of one record, applied to it and written into its history together."""

    def __init__(self, ctx: Ctx, record: Record) -> None:
        self.ctx = ctx
        self.record = record
        self.ref = RecordRef(RecordType(_type_of(record)), record.id)
        self.count = 0

    def set(
        self,
        field: str,
        value: Any,
        *,
        before: Any = None,
        label: Callable[[Any], str | None] | None = None,
        assign: bool = True,
    ) -> None:
        old = getattr(self.record, field) if before is None else before
        if _json(old) == _json(value):
            return
        if assign:
            setattr(self.record, field, value)
        record_change(
            self.ctx,
            self.ref,
            field,
            _json(old),
            _json(value),
            before_label=label(old) if label else None,
            after_label=label(value) if label else None,
        )
        self.count += 1

    def finish(self) -> None:
        """Move the version on when something changed; a concurrent edit makes this fail."""
        if self.count:
            version = self.record.version
            self.record.version = version + 1
            self.record.updated_at = utcnow()
            try:
                self.ctx.session.flush()
            except StaleDataError as exc:
                raise PreconditionFailed(
                    f"This {self.ref.type.value} was changed by someone else just now. "
                    "Nothing was saved: read it again and retry.",
                    {"version": [str(version)]},
                ) from exc
            # Ids were set, not objects: the related contact and company load afresh.
            self.ctx.session.expire(self.record)


def _owner(ctx: Ctx, changes: RecordEdit, data: Mapping[str, Any]) -> None:
    if "owner_id" in data:
        owner_id = data["owner_id"]
        if owner_id is not None:
            get_user_in_org(ctx.session, ctx.org_id, owner_id)
        changes.set("owner_id", owner_id, label=lambda v: _user_label(ctx, v))


def _plain(changes: RecordEdit, data: Mapping[str, Any], *fields: str) -> None:
    for field in fields:
        if field in data:
            value = data[field]
            changes.set(field, value.strip() if isinstance(value, str) else value)


def _replace_list(
    changes: RecordEdit, field: str, wanted: list[str], make: Callable[[str], Any]
) -> None:
    """A contact's addresses or a company's domains, replaced by the wanted list. Those it
    keeps stay first, in their order (the first address is the contact's main one)."""
    items = getattr(changes.record, field)
    value_of = {"emails": "email", "domains": "domain"}[field]
    before = [getattr(item, value_of) for item in items]
    after = [v for v in before if v in wanted] + [v for v in wanted if v not in before]
    if before == after:
        return
    kept = {getattr(item, value_of): item for item in items}
    setattr(changes.record, field, [kept.get(v) or make(v) for v in after])
    changes.ctx.session.flush()
    changes.set(field, after, before=before, assign=False)


def _set_company(ctx: Ctx, changes: RecordEdit, company_id: int | None) -> None:
    """The company a contact, lead or ticket belongs to: one of the organization's, or none."""
    if company_id is not None:
        get_record(ctx.session, ctx.org_id, RecordRef(RecordType.COMPANY, company_id))
    changes.set("company_id", company_id, label=record_label(ctx, RecordType.COMPANY))


def update_contact(
    ctx: Ctx, contact_id: int, data: Mapping[str, Any], expected_version: ExpectedVersion = None
) -> Contact:
    contact: Contact = get_record(
        ctx.session, ctx.org_id, RecordRef(RecordType.CONTACT, contact_id)
    )
    version_matches(contact, expected_version)
    changes = RecordEdit(ctx, contact)
    _plain(changes, data, "name", "phone", "job_title")
    if "emails" in data:
        emails = clean_emails(data["emails"])
        check_emails_free(ctx, emails, contact.id)
        _replace_list(
            changes, "emails", emails, lambda a: ContactEmail(organization_id=ctx.org_id, email=a)
        )
    if "company_id" in data:
        _set_company(ctx, changes, data["company_id"])
    _owner(ctx, changes, data)
    changes.finish()
    return contact


def update_company(
    ctx: Ctx, company_id: int, data: Mapping[str, Any], expected_version: ExpectedVersion = None
) -> Company:
    company: Company = get_record(
        ctx.session, ctx.org_id, RecordRef(RecordType.COMPANY, company_id)
    )
    version_matches(company, expected_version)
    changes = RecordEdit(ctx, company)
    _plain(changes, data, "name", "website", "phone")
    if "domains" in data:
        domains = clean_domains(data["domains"])
        check_domains_free(ctx, domains, company.id)
        _replace_list(
            changes,
            "domains",
            domains,
            lambda d: CompanyDomain(organization_id=ctx.org_id, domain=d),
        )
    _owner(ctx, changes, data)
    changes.finish()
    return company


def _customer(ctx: Ctx, changes: RecordEdit, data: Mapping[str, Any]) -> None:
    """The contact and company a lead or ticket is for; a new contact brings its company
    along unless a company is given too."""
    if "contact_id" in data:
        contact_id = data["contact_id"]
        contact = (
            get_record(ctx.session, ctx.org_id, RecordRef(RecordType.CONTACT, contact_id))
            if contact_id is not None
            else None
        )
        changes.set("contact_id", contact_id, label=record_label(ctx, RecordType.CONTACT))
        if "company_id" not in data and contact is not None and contact.company_id is not None:
            changes.set(
                "company_id", contact.company_id, label=record_label(ctx, RecordType.COMPANY)
            )
    if "company_id" in data:
        _set_company(ctx, changes, data["company_id"])


def update_lead(
    ctx: Ctx, lead_id: int, data: Mapping[str, Any], expected_version: ExpectedVersion = None
) -> Lead:
    lead: Lead = get_record(ctx.session, ctx.org_id, RecordRef(RecordType.LEAD, lead_id))
    version_matches(lead, expected_version)
    stage = LeadStage(data.get("stage", lead.stage))
    moved = stage != lead.stage
    lost_reason = data.get("lost_reason", lead.lost_reason)
    if moved and stage != LeadStage.LOST and "lost_reason" not in data:
        lost_reason = None  # back from lost: the reason goes with it
    if moved or "lost_reason" in data:
        # Checked when the stage or the reason changes: a lead lost before reasons were
        # asked for can still be renamed.
        check_lost_reason(stage, lost_reason)
    changes = RecordEdit(ctx, lead)
    changes.set("stage", stage)
    _plain(changes, data, "title", "description", "expected_revenue")
    changes.set("lost_reason", (lost_reason or "").strip() or None)
    probability = data.get("probability")
    if probability is None and moved and stage in (LeadStage.WON, LeadStage.LOST):
        # As in Odoo: a won lead is certain, a lost one is out.
        probability = 100 if stage == LeadStage.WON else 0
    if probability is not None:
        changes.set("probability", probability)
    if "close_date" in data:
        changes.set("close_date", data["close_date"])
    elif moved and stage in (LeadStage.WON, LeadStage.LOST):
        changes.set("close_date", utcnow().date())  # the expected date becomes the actual one
    _customer(ctx, changes, data)
    _owner(ctx, changes, data)
    changes.finish()
    return lead


def update_ticket(
    ctx: Ctx, ticket_id: int, data: Mapping[str, Any], expected_version: ExpectedVersion = None
) -> Ticket:
    ticket: Ticket = get_record(ctx.session, ctx.org_id, RecordRef(RecordType.TICKET, ticket_id))
    version_matches(ticket, expected_version)
    changes = RecordEdit(ctx, ticket)
    _plain(changes, data, "status", "subject", "description", "priority")
    _customer(ctx, changes, data)
    _owner(ctx, changes, data)
    changes.finish()
    return ticket


UPDATERS: dict[RecordType, Callable[[Ctx, int, Mapping[str, Any], ExpectedVersion], Any]] = {
    RecordType.CONTACT: update_contact,
    RecordType.COMPANY: update_company,
    RecordType.LEAD: update_lead,
    RecordType.TICKET: update_ticket,
}


def update_record(
    ctx: Ctx, ref: RecordRef, data: Mapping[str, Any], expected_version: ExpectedVersion = None
) -> Record:
    record: Record = UPDATERS[ref.type](ctx, ref.id, data, expected_version)
    return record


# Archive and restore ------------------------------------------------------------


def archive(ctx: Ctx, ref: RecordRef, expected_version: ExpectedVersion = None) -> Record:
    """Out of lookups, searches, cards and lists, kept with its emails until purged."""
    record: Record = get_record(ctx.session, ctx.org_id, ref)
    version_matches(record, expected_version)
    changes = RecordEdit(ctx, record)
    changes.set("archived", True, before=False, assign=False)
    record.archived_at = utcnow()
    changes.finish()
    return record


def restore(ctx: Ctx, ref: RecordRef, expected_version: ExpectedVersion = None) -> Record:
    """Bring an archived record back (admins only)."""
    if ctx.user.role != Role.ADMIN:
        raise Forbidden("Only an admin can restore an archived record.")
    record: Record = get_record(ctx.session, ctx.org_id, ref, include_archived=True)
    version_matches(record, expected_version)
    if record.archived_at is None:
        return record
    changes = RecordEdit(ctx, record)
    changes.set("archived", False, before=True, assign=False)
    record.archived_at = None
    changes.finish()
    return record

"""Creating and reading companies, contacts, leads, tickets and tasks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, TypeVar, cast

from sqlalchemy import Select, exists, select
from sqlalchemy.orm import Session

from connector.addresses import (
    company_name_from_domain,
    domain_of,
    name_from_address,
    normalize_domain,
    normalize_email,
)
from connector.errors import Conflict, InvalidInput, NotFound
from connector.orgs.context import Ctx
from connector.orgs.models import User
from connector.records.models import (
    Company,
    CompanyDomain,
    Contact,
    ContactEmail,
    Lead,
    LeadStage,
    RecordType,
    Task,
    Ticket,
    TicketPriority,
    TicketStatus,
)
from connector.records.refs import RecordRef

Record = Contact | Company | Lead | Ticket

RECORD_MODELS: dict[RecordType, type[Record]] = {
    RecordType.CONTACT: Contact,
    RecordType.COMPANY: Company,
    RecordType.LEAD: Lead,
    RecordType.TICKET: Ticket,
}


def get_record(
    session: Session, org_id: int, ref: RecordRef, *, include_archived: bool = False
) -> Any:
    """The record, or NotFound: another organization's record is indistinguishable from none,
    and an archived one from a removed one (unless asked for, to restore it)."""
    # mypy joins type[Contact] | type[Company] | ... to Base; it is one of the record models.
    record = cast(Record | None, session.get(RECORD_MODELS[ref.type], ref.id))
    if (
        record is None
        or record.organization_id != org_id
        or (record.archived_at is not None and not include_archived)
    ):
        raise NotFound(f"There is no {ref.type.value} with id {ref.id}.")
    return record


LiveRecord = TypeVar("LiveRecord", Contact, Company)


def live(record: LiveRecord | None) -> LiveRecord | None:
    """A related record as cards, replies and summaries show it: an archived one is none."""
    return record if record is not None and record.archived_at is None else None


def archived_holder(record: Contact | Company) -> str:
    """How an error names a record that holds an address or domain while archived."""
    if record.archived_at is None:
        return record.name
    kind = "contact" if isinstance(record, Contact) else "company"
    return f"an archived {kind}, {record.name} (#{record.id}), which an admin can restore"


def get_user_in_org(session: Session, org_id: int, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or user.organization_id != org_id:
        raise NotFound(f"There is no user with id {user_id}.")
    return user


# Companies ---------------------------------------------------------------


def company_for_domain(
    session: Session, org_id: int, domain: str, *, include_archived: bool = False
) -> Company | None:
    query = (
        select(Company)
        .join(CompanyDomain)
        .where(CompanyDomain.organization_id == org_id, CompanyDomain.domain == domain)
    )
    if not include_archived:
        query = query.where(Company.archived_at.is_(None))
    return session.scalar(query)


def check_domains_free(ctx: Ctx, domains: Sequence[str], company_id: int | None = None) -> None:
    """Each domain names one company at most: Conflict when another one (archived or not) has it."""
    for domain in domains:
        owner = company_for_domain(ctx.session, ctx.org_id, domain, include_archived=True)
        if owner is not None and owner.id != company_id:
            raise Conflict(
                f"The domain {domain} belongs to {archived_holder(owner)} already.",
                {"domains": [domain], "company_id": owner.id},
            )


def clean_domains(domains: Sequence[str]) -> list[str]:
    cleaned: list[str] = []
    for raw in domains:
        domain = normalize_domain(raw)
        if domain is None:
            raise InvalidInput(f"{raw!r} is not a domain.", {"domains": [f"invalid: {raw}"]})
        if domain not in cleaned:
            cleaned.append(domain)
    return cleaned


def create_company(
    ctx: Ctx,
    *,
    name: str,
    domains: Sequence[str] = (),
    website: str | None = None,
    phone: str | None = None,
    owner_id: int | None = None,
) -> Company:
    cleaned = clean_domains(domains)
    check_domains_free(ctx, cleaned)
    company = Company(
        organization_id=ctx.org_id,
        name=name.strip(),
        website=website,
        phone=phone,
        owner_id=owner_of(ctx, owner_id),
        domains=[CompanyDomain(organization_id=ctx.org_id, domain=d) for d in cleaned],
    )
    ctx.session.add(company)
    ctx.session.flush()
    return company


# Contacts ----------------------------------------------------------------


def contact_for_email(
    session: Session, org_id: int, address: str, *, include_archived: bool = False
) -> Contact | None:
    query = contact_by_email_query(org_id, address)
    if not include_archived:
        query = query.where(Contact.archived_at.is_(None))
    return session.scalar(query)


def contact_by_email_query(org_id: int, address: str) -> Select[Contact]:
    """The lookup's query: equality on the stored lower-cased address, within the organization."""
    return (
        select(Contact)
        .join(ContactEmail, ContactEmail.contact_id == Contact.id)
        .where(ContactEmail.organization_id == org_id, ContactEmail.email == address.lower())
    )


def check_emails_free(ctx: Ctx, emails: Sequence[str], contact_id: int | None = None) -> None:
    """An address names one contact at most: Conflict when another one (archived or not) has it."""
    for address in emails:
        existing = contact_for_email(ctx.session, ctx.org_id, address, include_archived=True)
        if existing is not None and existing.id != contact_id:
            raise Conflict(
                f"{address} is the address of {archived_holder(existing)} already.",
                {"emails": [address], "contact_id": existing.id},
            )


def proposed_company(ctx: Ctx, address: str) -> tuple[Company | None, str | None]:
    """The company an address belongs to by its domain, or the domain to make one from."""
    domain = domain_of(address)
    if domain in ctx.settings.free_mail:
        return None, None
    company = company_for_domain(ctx.session, ctx.org_id, domain, include_archived=True)
    if company is not None and company.archived_at is not None:
        # The domain is an archived company's: neither that one nor a new one.
        return None, None
    return (company, None) if company is not None else (None, domain)


def propose_contact(ctx: Ctx, address: str, display_name: str = "") -> dict[str, Any]:
    """What "Create contact" prefills for a sender who is not in the records."""
    company, new_domain = proposed_company(ctx, address)
    return {
        "name": display_name.strip() or name_from_address(address),
        "email": address,
        "company": {"id": company.id, "name": company.name} if company else None,
        "new_company": (
            {"name": company_name_from_domain(new_domain), "domain": new_domain}
            if new_domain
            else None
        ),
    }


def clean_emails(emails: Sequence[str]) -> list[str]:
    cleaned: list[str] = []
    for raw in emails:
        address = normalize_email(raw)
        if address is None:
            raise InvalidInput(f"{raw!r} is not an email address.", {"emails": [f"invalid: {raw}"]})
        if address not in cleaned:
            cleaned.append(address)
    if not cleaned:
        raise InvalidInput("A contact needs at least one email address.", {"emails": ["empty"]})
    return cleaned


def create_contact(
    ctx: Ctx,
    *,
    name: str,
    emails: Sequence[str],
    phone: str | None = None,
    job_title: str | None = None,
    company_id: int | None = None,
    new_company: dict[str, Any] | None = None,
    owner_id: int | None = None,
) -> Contact:
    """A contact; its company is the one given, a new one, or else the one its domain names."""
    cleaned = clean_emails(emails)
    check_emails_free(ctx, cleaned)
    company: Company | None
    if company_id is not None:
        company = get_record(ctx.session, ctx.org_id, RecordRef(RecordType.COMPANY, company_id))
    elif new_company is not None:
        company = create_company(ctx, **new_company)
    else:
        company = next((c for a in cleaned if (c := proposed_company(ctx, a)[0]) is not None), None)
    contact = Contact(
        organization_id=ctx.org_id,
        name=name.strip() or cleaned[0],
        phone=phone,
        job_title=job_title,
        company=company,
        owner_id=owner_of(ctx, owner_id),
        emails=[ContactEmail(organization_id=ctx.org_id, email=a) for a in cleaned],
    )
    ctx.session.add(contact)
    ctx.session.flush()
    return contact


def contact_for_sender(ctx: Ctx, address: str, display_name: str) -> Contact | None:
    """The sender's contact, created (with the company its domain names) when there is none;
    None when the address is an archived contact's (a lead from its email is then for no
    contact, rather than refused: the archived one can still be restored)."""
    existing = contact_for_email(ctx.session, ctx.org_id, address, include_archived=True)
    if existing is not None:
        return existing if existing.archived_at is None else None
    proposal = propose_contact(ctx, address, display_name)
    return create_contact(ctx, name=proposal["name"], emails=[address])


# Leads and tickets ----------------------------------------------------------------


def owner_of(ctx: Ctx, owner_id: int | None) -> int:
    if owner_id is None:
        return ctx.user.id
    return get_user_in_org(ctx.session, ctx.org_id, owner_id).id


def linked_records(ctx: Ctx, contact_id: int | None, company_id: int | None) -> tuple[Any, Any]:
    contact = (
        get_record(ctx.session, ctx.org_id, RecordRef(RecordType.CONTACT, contact_id))
        if contact_id is not None
        else None
    )
    company = (
        get_record(ctx.session, ctx.org_id, RecordRef(RecordType.COMPANY, company_id))
        if company_id is not None
        else (contact.company if contact is not None else None)
    )
    return contact, company


def check_lost_reason(stage: LeadStage | str, lost_reason: str | None) -> None:
    """A lost lead says why; a lead that is not lost has no lost reason."""
    given = bool((lost_reason or "").strip())
    if stage == LeadStage.LOST and not given:
        raise InvalidInput(
            "Say why the lead is lost (lost_reason).",
            {"lost_reason": ["Required when the stage is lost."]},
        )
    if stage != LeadStage.LOST and given:
        raise InvalidInput(
            "Only a lost lead has a lost_reason.",
            {"lost_reason": ["Only for the stage lost."]},
        )


def create_lead(
    ctx: Ctx,
    *,
    title: str,
    description: str = "",
    stage: LeadStage = LeadStage.NEW,
    expected_revenue: Decimal | None = None,
    probability: int = 10,
    contact_id: int | None = None,
    company_id: int | None = None,
    owner_id: int | None = None,
    close_date: dt.date | None = None,
    lost_reason: str | None = None,
) -> Lead:
    contact, company = linked_records(ctx, contact_id, company_id)
    check_lost_reason(stage, lost_reason)
    lead = Lead(
        organization_id=ctx.org_id,
        title=title.strip(),
        description=description,
        stage=stage,
        expected_revenue=expected_revenue,
        probability=probability,
        close_date=close_date,
        lost_reason=(lost_reason or "").strip() or None,
        contact=contact,
        company=company,
        owner_id=owner_of(ctx, owner_id),
    )
    ctx.session.add(lead)
    ctx.session.flush()
    return lead


def create_ticket(
    ctx: Ctx,
    *,
    subject: str,
    description: str = "",
    status: TicketStatus = TicketStatus.NEW,
    priority: TicketPriority = TicketPriority.NORMAL,
    contact_id: int | None = None,
    company_id: int | None = None,
    owner_id: int | None = None,
) -> Ticket:
    contact, company = linked_records(ctx, contact_id, company_id)
    ticket = Ticket(
        organization_id=ctx.org_id,
        subject=subject.strip(),
        description=description,
        status=status,
        priority=priority,
        contact=contact,
        company=company,
        owner_id=owner_of(ctx, owner_id),
    )
    ctx.session.add(ticket)
    ctx.session.flush()
    return ticket


# Tasks -------------------------------------------------------------------


def create_task(
    ctx: Ctx,
    *,
    title: str,
    due_date: dt.date | None = None,
    record: RecordRef | None = None,
    assignee_id: int | None = None,
) -> Task:
    if record is not None:
        get_record(ctx.session, ctx.org_id, record)
    task = Task(
        organization_id=ctx.org_id,
        title=title.strip(),
        due_date=due_date,
        assignee_id=owner_of(ctx, assignee_id),
        record_type=record.type if record else None,
        record_id=record.id if record else None,
    )
    ctx.session.add(task)
    ctx.session.flush()
    return task


def get_task(ctx: Ctx, task_id: int) -> Task:
    task = ctx.session.get(Task, task_id)
    if task is None or task.organization_id != ctx.org_id:
        raise NotFound(f"There is no task with id {task_id}.")
    return task


def update_task(ctx: Ctx, task_id: int, changes: dict[str, Any]) -> Task:
    task = get_task(ctx, task_id)
    for field in ("title", "due_date", "done"):
        if field in changes:
            setattr(task, field, changes[field])
    if "assignee_id" in changes:
        task.assignee_id = owner_of(ctx, changes["assignee_id"])
    ctx.session.flush()
    return task


def _not_about_archived() -> list[Any]:
    """Conditions that leave out tasks about an archived record (it answers 404)."""
    return [
        ~exists().where(
            Task.record_type == record_type,
            model.id == Task.record_id,
            model.archived_at.is_not(None),
        )
        for record_type, model in RECORD_MODELS.items()
    ]


def list_tasks(
    ctx: Ctx,
    *,
    assignee_id: int | None,
    include_done: bool = False,
    due_before: dt.date | None = None,
    limit: int = 50,
) -> list[Task]:
    query = select(Task).where(Task.organization_id == ctx.org_id, *_not_about_archived())
    if assignee_id is not None:
        query = query.where(Task.assignee_id == assignee_id)
    if not include_done:
        query = query.where(Task.done.is_(False))
    if due_before is not None:
        query = query.where(Task.due_date <= due_before)
    query = query.order_by(Task.due_date.is_(None), Task.due_date, Task.id).limit(limit)
    return list(ctx.session.scalars(query))

"""Exporting an organization's records as CSV or JSON lines, streamed.

One query per export, read in chunks (yield_per: a server-side cursor on PostgreSQL) and
written row by row, so memory stays flat whatever the size. The CSV headers are those the
importer maps ("Email", "Email 2", "Company", "Connector ID"...), so that an export
imports again as it is: nothing created, nothing rejected. Archived records are left out
(they are in no list either); every email and note is exported.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from itertools import groupby
from typing import Any, TextIO

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, aliased

from connector.activities.models import Activity, ActivityLink
from connector.orgs.models import User
from connector.records.models import Company, CompanyDomain, Contact, ContactEmail, Lead, Ticket

KINDS = ("contacts", "companies", "leads", "tickets", "activities")
FORMATS = ("csv", "jsonl")
CHUNK = 1000


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _stream(session: Session, query: Select[*tuple[Any, ...]]) -> Iterator[Any]:
    yield from session.execute(query.execution_options(yield_per=CHUNK))


def _grouped(rows: Iterator[Any]) -> Iterator[tuple[Any, list[Any]]]:
    """Rows of a join (a record, then one row per address, domain or link) per record."""
    for _, group in groupby(rows, key=lambda r: r[0]):
        items = list(group)
        yield items[0], items


def _widest(session: Session, query: Select[*tuple[Any, ...]]) -> int:
    counts = query.subquery()
    return int(session.scalar(select(func.max(counts.c.n))) or 0)


def _numbered(label: str, count: int) -> list[str]:
    return [label] + [f"{label} {n}" for n in range(2, count + 1)]


# What each kind exports: its JSON records, and the CSV columns made from them --------------


class Export:
    def __init__(
        self,
        columns: list[str],
        records: Iterator[dict[str, Any]],
        cells: Callable[[dict[str, Any]], list[Any]],
    ) -> None:
        self.columns = columns
        self.records = records
        self.cells = cells


def _first_email(contact_id: Any) -> Any:
    return (
        select(ContactEmail.email)
        .where(ContactEmail.contact_id == contact_id)
        .order_by(ContactEmail.id)
        .limit(1)
        .scalar_subquery()
    )


def contacts(session: Session, org_id: int) -> Export:
    width = max(
        1,
        _widest(
            session,
            select(func.count().label("n"))
            .select_from(ContactEmail)
            .join(Contact, Contact.id == ContactEmail.contact_id)
            .where(Contact.organization_id == org_id, Contact.archived_at.is_(None))
            .group_by(ContactEmail.contact_id),
        ),
    )
    query = (
        select(
            Contact.id,
            Contact.name,
            Contact.phone,
            Contact.job_title,
            Company.name,
            User.email,
            Contact.created_at,
            Contact.updated_at,
            ContactEmail.email,
        )
        .outerjoin(ContactEmail, ContactEmail.contact_id == Contact.id)
        .outerjoin(Company, Company.id == Contact.company_id)
        .outerjoin(User, User.id == Contact.owner_id)
        .where(Contact.organization_id == org_id, Contact.archived_at.is_(None))
        .order_by(Contact.id, ContactEmail.id)
    )

    def records() -> Iterator[dict[str, Any]]:
        for first, rows in _grouped(_stream(session, query)):
            yield {
                "id": first[0],
                "name": first[1],
                "emails": [r[8] for r in rows if r[8] is not None],
                "phone": first[2],
                "job_title": first[3],
                "company": first[4],
                "owner": first[5],
                "created_at": _plain(first[6]),
                "updated_at": _plain(first[7]),
            }

    def cells(record: dict[str, Any]) -> list[Any]:
        emails = record["emails"] + [""] * (width - len(record["emails"]))
        return [
            record["name"],
            *emails,
            record["phone"],
            record["job_title"],
            record["company"],
            record["owner"],
            record["created_at"],
        ]

    columns = ["Name", *_numbered("Email", width), "Phone", "Job Title", "Company"]
    return Export([*columns, "Owner", "Created"], records(), cells)


def companies(session: Session, org_id: int) -> Export:
    width = max(
        1,
        _widest(
            session,
            select(func.count().label("n"))
            .select_from(CompanyDomain)
            .join(Company, Company.id == CompanyDomain.company_id)
            .where(Company.organization_id == org_id, Company.archived_at.is_(None))
            .group_by(CompanyDomain.company_id),
        ),
    )
    query = (
        select(
            Company.id,
            Company.name,
            Company.website,
            Company.phone,
            User.email,
            Company.created_at,
            CompanyDomain.domain,
        )
        .outerjoin(CompanyDomain, CompanyDomain.company_id == Company.id)
        .outerjoin(User, User.id == Company.owner_id)
        .where(Company.organization_id == org_id, Company.archived_at.is_(None))
        .order_by(Company.id, CompanyDomain.id)
    )

    def records() -> Iterator[dict[str, Any]]:
        for first, rows in _grouped(_stream(session, query)):
            yield {
                "id": first[0],
                "name": first[1],
                "domains": [r[6] for r in rows if r[6] is not None],
                "website": first[2],
                "phone": first[3],
                "owner": first[4],
                "created_at": _plain(first[5]),
            }

    def cells(record: dict[str, Any]) -> list[Any]:
        domains = record["domains"] + [""] * (width - len(record["domains"]))
        return [
            record["name"],
            *domains,
            record["website"],
            record["phone"],
            record["owner"],
            record["created_at"],
        ]

    columns = ["Name", *_numbered("Domain", width), "Website", "Phone", "Owner", "Created"]
    return Export(columns, records(), cells)


def leads(session: Session, org_id: int) -> Export:
    contact, company = aliased(Contact), aliased(Company)
    query = (
        select(
            Lead.id,
            Lead.external_id,
            Lead.title,
            Lead.stage,
            Lead.expected_revenue,
            Lead.probability,
            Lead.close_date,
            Lead.lost_reason,
            Lead.description,
            _first_email(Lead.contact_id),
            contact.name,
            company.name,
            User.email,
            Lead.created_at,
        )
        .outerjoin(contact, contact.id == Lead.contact_id)
        .outerjoin(company, company.id == Lead.company_id)
        .outerjoin(User, User.id == Lead.owner_id)
        .where(Lead.organization_id == org_id, Lead.archived_at.is_(None))
        .order_by(Lead.id)
    )
    names = [
        "id",
        "external_id",
        "title",
        "stage",
        "expected_revenue",
        "probability",
        "close_date",
        "lost_reason",
        "description",
        "contact_email",
        "contact",
        "company",
        "owner",
        "created_at",
    ]

    def records() -> Iterator[dict[str, Any]]:
        for row in _stream(session, query):
            yield {name: _plain(value) for name, value in zip(names, row, strict=True)}

    columns = [
        "Connector ID",
        "External ID",
        "Title",
        "Stage",
        "Expected Revenue",
        "Probability",
        "Close Date",
        "Lost Reason",
        "Description",
        "Contact Email",
        "Contact Name",
        "Company",
        "Owner",
        "Created",
    ]
    return Export(columns, records(), lambda record: [record[n] for n in names])


def tickets(session: Session, org_id: int) -> Export:
    contact, company = aliased(Contact), aliased(Company)
    query = (
        select(
            Ticket.id,
            Ticket.subject,
            Ticket.status,
            Ticket.priority,
            Ticket.description,
            _first_email(Ticket.contact_id),
            contact.name,
            company.name,
            User.email,
            Ticket.created_at,
            Ticket.updated_at,
        )
        .outerjoin(contact, contact.id == Ticket.contact_id)
        .outerjoin(company, company.id == Ticket.company_id)
        .outerjoin(User, User.id == Ticket.owner_id)
        .where(Ticket.organization_id == org_id, Ticket.archived_at.is_(None))
        .order_by(Ticket.id)
    )
    names = [
        "id",
        "subject",
        "status",
        "priority",
        "description",
        "contact_email",
        "contact",
        "company",
        "owner",
        "created_at",
        "updated_at",
    ]

    def records() -> Iterator[dict[str, Any]]:
        for row in _stream(session, query):
            yield {name: _plain(value) for name, value in zip(names, row, strict=True)}

    columns = [
        "Id",
        "Subject",
        "Status",
        "Priority",
        "Description",
        "Contact Email",
        "Contact Name",
        "Company",
        "Owner",
        "Created",
        "Updated",
    ]
    return Export(columns, records(), lambda record: [record[n] for n in names])


def activities(session: Session, org_id: int) -> Export:
    query = (
        select(
            Activity.id,
            Activity.kind,
            Activity.occurred_at,
            Activity.subject,
            Activity.from_address,
            Activity.to_addresses,
            Activity.cc_addresses,
            Activity.body_text,
            User.email,
            ActivityLink.record_type,
            ActivityLink.record_id,
        )
        .outerjoin(ActivityLink, ActivityLink.activity_id == Activity.id)
        .outerjoin(User, User.id == Activity.author_id)
        .where(Activity.organization_id == org_id)
        .order_by(Activity.id, ActivityLink.id)
    )

    def records() -> Iterator[dict[str, Any]]:
        for first, rows in _grouped(_stream(session, query)):
            yield {
                "id": first[0],
                "kind": str(first[1]),
                "occurred_at": _plain(first[2]),
                "subject": first[3],
                "from": first[4],
                "to": list(first[5] or []),
                "cc": list(first[6] or []),
                "body": first[7],
                "author": first[8],
                "records": [f"{r[9]}:{r[10]}" for r in rows if r[9] is not None],
            }

    def cells(record: dict[str, Any]) -> list[Any]:
        return [
            record["id"],
            record["kind"],
            record["occurred_at"],
            record["subject"],
            record["from"],
            ", ".join(record["to"]),
            ", ".join(record["cc"]),
            " ".join(record["records"]),
            record["author"],
            record["body"],
        ]

    columns = ["Id", "Kind", "Date", "Subject", "From", "To", "Cc", "Records", "Author", "Body"]
    return Export(columns, records(), cells)


EXPORTERS: dict[str, Callable[[Session, int], Export]] = {
    "contacts": contacts,
    "companies": companies,
    "leads": leads,
    "tickets": tickets,
    "activities": activities,
}


def write(session: Session, org_id: int, kind: str, fmt: str, out: TextIO) -> int:
    """Write the organization's `kind` to `out` as `fmt` ("csv" or "jsonl"); the count."""
    export = EXPORTERS[kind](session, org_id)
    count = 0
    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(export.columns)
        for record in export.records:
            writer.writerow(["" if v is None else v for v in export.cells(record)])
            count += 1
    else:
        for record in export.records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count

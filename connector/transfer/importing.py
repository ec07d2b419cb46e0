"""Importing rows into an organization's records: matched, created or updated, in batches.

Every batch of rows costs a few queries, whatever its size: one for the addresses it names,
one for the contacts (and one for their addresses) they belong to, bulk inserts of what is
new (RETURNING the ids), and a commit (the caller's, through `commit`). Companies are read
once, at the start. Updates go through the services the API uses (records.editing: the
same checks, the record's history, its version), one savepoint each, and only for records
that the file really changes: importing a file again costs the reads alone.

A row that cannot be imported is handed to `reject` with the reason, and the rest go on.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from itertools import islice
from typing import Any, TypeVar, cast

from sqlalchemy import Table, bindparam, func, insert, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from connector.addresses import company_name_from_domain, domain_of, normalize_domain
from connector.addresses import normalize_email as _normalize_email
from connector.errors import ServiceError
from connector.orgs.context import Ctx
from connector.orm import utcnow
from connector.records.editing import update_company, update_contact, update_lead
from connector.records.models import (
    Company,
    CompanyDomain,
    Contact,
    ContactEmail,
    Lead,
    LeadStage,
    name_key,
)
from connector.records.service import check_lost_reason
from connector.transfer import values
from connector.transfer.reading import SourceRow

BATCH_SIZE = 5000

Reject = Callable[[SourceRow, str], None]
T = TypeVar("T")

# The tables, for Core's bulk inserts (executemany, RETURNING the ids in the rows' order).
COMPANIES = cast(Table, Company.__table__)
COMPANY_DOMAINS = cast(Table, CompanyDomain.__table__)
CONTACTS = cast(Table, Contact.__table__)
CONTACT_EMAILS = cast(Table, ContactEmail.__table__)
LEADS = cast(Table, Lead.__table__)
# An address as most files write it: nothing for parseaddr to take apart.
_PLAIN_ADDRESS = re.compile(r"[^\s@<>\"(),;:]+@(?!\.)[^\s@<>\"(),;:]+\.[^\s@<>\"(),;:]+")


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def among(session: Session, column: Any, items: Iterable[Any]) -> Any:
    """`column IN (items)`; on PostgreSQL `column IN (SELECT unnest(array))`: one parameter,
    whatever the count (a thousand would cost the driver more to render than the query to
    run), and a set the planner hashes or looks up by index, even while a table that is being
    filled has no statistics yet (`= ANY(array)` then compares each row with every item)."""
    items = list(items)
    if _postgres(session):
        array = bindparam(None, items, type_=ARRAY(column.type))
        return column.in_(select(func.unnest(array)).scalar_subquery())
    return column.in_(items)


def bulk_insert(
    session: Session, table: Table, rows: list[dict[str, Any]], *, ids: bool
) -> list[int]:
    """Insert the rows (dicts with the same keys, every column given that has no server
    default); with `ids`, their new ids, in the rows' order. PostgreSQL: the ids are taken
    from the table's sequence in one query, then the rows go in by COPY. SQLite: one
    executemany (RETURNING the ids)."""
    if not rows:
        return []
    if _postgres(session):
        new_ids: list[int] = []
        if ids:
            new_ids = list(
                session.scalars(
                    text(
                        "SELECT nextval(pg_get_serial_sequence(:table, 'id')) "
                        "FROM generate_series(1, :count)"
                    ),
                    {"table": table.name, "count": len(rows)},
                )
            )
            rows = [{"id": i, **row} for i, row in zip(new_ids, rows, strict=True)]
        columns = list(rows[0])
        raw = session.connection().connection.driver_connection
        assert raw is not None
        with raw.cursor() as cursor:
            names = ", ".join(columns)
            with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([row[c] for c in columns])
        return new_ids
    if not ids:
        session.execute(insert(table), rows)
        return []
    return list(
        session.scalars(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)
    )


class BadRow(ValueError):
    """The row cannot be imported: the message says why."""


@dataclass
class Summary:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    rows: int = 0
    companies_created: int = 0

    def line(self) -> str:
        return (
            f"created {self.created}, updated {self.updated}, "
            f"unchanged {self.unchanged}, rejected {self.rejected}"
        )

    @property
    def imported(self) -> int:
        return self.created + self.updated + self.unchanged

    def counts(self) -> dict[str, int]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
        }


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _limit(value: str | None, length: int, what: str) -> str | None:
    if value is not None and len(value) > length:
        raise BadRow(f"the {what} is longer than {length} characters")
    return value


def normalize_email(raw: str) -> str:
    plain = raw.strip()
    if len(plain) <= 320 and _PLAIN_ADDRESS.fullmatch(plain):
        return plain.lower()
    address = _normalize_email(raw)
    if address is None or len(address) > 320:
        raise BadRow(f"{raw!r} is not an email address")
    return address


# Companies: read once, kept up to date as the import creates them --------------------------


@dataclass(eq=False)
class CompanyRef:
    """A company of the organization, or one this import is about to create (id None)."""

    id: int | None
    name: str
    archived: bool = False
    website: str | None = None
    phone: str | None = None
    domains: list[str] = field(default_factory=list)


class Companies:
    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self.by_id: dict[int, CompanyRef] = {}
        self.by_name: dict[str, CompanyRef] = {}
        self.by_domain: dict[str, CompanyRef] = {}
        self.pending: list[CompanyRef] = []
        rows = ctx.session.execute(
            select(Company.id, Company.name, Company.archived_at, Company.website, Company.phone)
            .where(Company.organization_id == ctx.org_id)
            .order_by(Company.id)
        )
        for company_id, name, archived_at, website, phone in rows:
            ref = CompanyRef(company_id, name, archived_at is not None, website, phone)
            self.by_id[company_id] = ref
            if not ref.archived:
                self.by_name.setdefault(name_key(name), ref)
        domains = ctx.session.execute(
            select(CompanyDomain.company_id, CompanyDomain.domain)
            .where(CompanyDomain.organization_id == ctx.org_id)
            .order_by(CompanyDomain.id)
        )
        for company_id, domain in domains:
            ref = self.by_id[company_id]
            ref.domains.append(domain)
            self.by_domain[domain] = ref

    def free_mail(self, domain: str) -> bool:
        return domain in self.ctx.settings.free_mail

    def named(self, name: str) -> CompanyRef | None:
        return self.by_name.get(name_key(name))

    def current(self, company_id: int | None, name: str) -> CompanyRef | None:
        """The record's own company, when the file names it (two companies may share a name)."""
        ref = self.by_id.get(company_id) if company_id is not None else None
        if ref is not None and name_key(ref.name) == name_key(name):
            return ref
        return None

    def for_domains(self, domains: Iterable[str]) -> CompanyRef | None:
        """The live company of the first of these domains that names one."""
        for domain in domains:
            ref = self.by_domain.get(domain)
            if ref is not None and not ref.archived:
                return ref
        return None

    def new(
        self,
        name: str,
        domains: Sequence[str],
        website: str | None = None,
        phone: str | None = None,
    ) -> CompanyRef:
        ref = CompanyRef(None, name, website=website, phone=phone)
        ref.domains = [d for d in dict.fromkeys(domains) if d not in self.by_domain]
        for domain in ref.domains:
            self.by_domain[domain] = ref
        self.by_name.setdefault(name_key(name), ref)
        self.pending.append(ref)
        return ref

    def for_contact(self, name: str, addresses: Sequence[str]) -> CompanyRef:
        """The company a contact row names: by name, else by its addresses' domain, else a
        new one (with the addresses' domains that are no free-mail and nobody's yet)."""
        found = self.named(name) or self.for_domains(domain_of(a) for a in addresses)
        if found is not None:
            return found
        domains = [domain_of(a) for a in addresses if not self.free_mail(domain_of(a))]
        return self.new(name, domains)

    def create_pending(self) -> int:
        """Insert the companies this batch needs (one statement, and one for their domains)."""
        pending, self.pending = self.pending, []
        if not pending:
            return 0
        session, org_id = self.ctx.session, self.ctx.org_id
        now = utcnow()
        ids = bulk_insert(
            session,
            COMPANIES,
            [
                {
                    "organization_id": org_id,
                    "name": ref.name,
                    "website": ref.website,
                    "phone": ref.phone,
                    "owner_id": self.ctx.user.id,
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                }
                for ref in pending
            ],
            ids=True,
        )
        domain_rows = []
        for ref, company_id in zip(pending, ids, strict=True):
            ref.id = company_id
            self.by_id[company_id] = ref
            domain_rows += [
                {"organization_id": org_id, "company_id": company_id, "domain": d}
                for d in ref.domains
            ]
        bulk_insert(session, COMPANY_DOMAINS, domain_rows, ids=False)
        return len(pending)


# The import ---------------------------------------------------------------------------


class Importer:
    """One import run: the organization's companies, the rows seen so far, the counts."""

    def __init__(
        self,
        ctx: Ctx,
        *,
        commit: Callable[[], None],
        reject: Reject,
        progress: Callable[[int], None] | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.ctx = ctx
        self.session: Session = ctx.session
        self.commit = commit
        self._reject = reject
        self.progress = progress
        self.batch_size = batch_size
        self.summary = Summary()
        self.companies = Companies(ctx)
        # Each address, company or lead key the file has named, with its line: a second
        # row for the same record is rejected, naming the first.
        self.seen: dict[Any, int] = {}

    def reject(self, row: SourceRow, reason: str) -> None:
        self.summary.rejected += 1
        self._reject(row, reason)

    def run(self, kind: str, rows: Iterable[SourceRow]) -> Summary:
        handle = {
            "contacts": self._contacts,
            "companies": self._companies,
            "leads": self._leads,
        }[kind]
        for batch in batches(rows, self.batch_size):
            good: list[SourceRow] = []
            for row in batch:
                self.summary.rows += 1
                if row.problem:
                    self.reject(row, row.problem)
                else:
                    good.append(row)
            handle(good)
            self.commit()
            self._forget_objects()
            if self.progress is not None:
                self.progress(len(batch))
        return self.summary

    def _forget_objects(self) -> None:
        """Keep memory flat: what the batch loaded leaves the session (the user stays)."""
        for obj in list(self.session.identity_map.values()):
            if obj is not self.ctx.user:
                self.session.expunge(obj)

    def _first_seen(self, keys: Iterable[Any], line: int) -> int | None:
        keys = list(keys)
        for key in keys:
            if key in self.seen:
                return self.seen[key]
        for key in keys:
            self.seen[key] = line
        return None

    def _update(self, row: SourceRow, apply: Callable[[], Any]) -> None:
        """An update through the API's service, in a savepoint: refused, it is rejected alone."""
        try:
            with self.session.begin_nested():
                apply()
        except ServiceError as exc:
            self.reject(row, exc.message)
            return
        self.summary.updated += 1

    # Contacts ---------------------------------------------------------------------------

    def _contact_in(self, row: SourceRow) -> dict[str, Any]:
        emails: list[str] = []
        for raw in row.values.get("emails", []):
            address = normalize_email(raw)
            if address not in emails:
                emails.append(address)
        if not emails:
            raise BadRow("no email address")
        name = row.first("name")
        if name is None:
            parts = [row.first(f) for f in ("first_name", "middle_name", "last_name")]
            name = " ".join(p for p in parts if p) or None
        if name is not None:
            name = " ".join(name.split())
        return {
            "emails": emails,
            "name": _limit(name, 200, "name"),
            "phone": _limit(row.first("phone"), 50, "phone number"),
            "job_title": _limit(row.first("job_title"), 200, "job title"),
            "company": _limit(row.first("company"), 200, "company name"),
        }

    def _contacts(self, rows: list[SourceRow]) -> None:
        session, org_id = self.session, self.ctx.org_id
        parsed: list[tuple[SourceRow, dict[str, Any]]] = []
        for row in rows:
            try:
                item = self._contact_in(row)
            except BadRow as exc:
                self.reject(row, str(exc))
                continue
            first = self._first_seen((("email", a) for a in item["emails"]), row.line)
            if first is not None:
                self.reject(row, f"the same person as line {first} (an address of both)")
                continue
            parsed.append((row, item))
        if not parsed:
            return
        addresses = [a for _, item in parsed for a in item["emails"]]
        owners: dict[str, int] = dict(
            session.execute(
                select(ContactEmail.email, ContactEmail.contact_id).where(
                    ContactEmail.organization_id == org_id,
                    among(session, ContactEmail.email, addresses),
                )
            ).all()
        )
        stored: dict[int, Any] = {}
        stored_emails: dict[int, list[str]] = {}
        if owners:
            ids = set(owners.values())
            for record in session.execute(
                select(
                    Contact.id,
                    Contact.name,
                    Contact.phone,
                    Contact.job_title,
                    Contact.company_id,
                    Contact.archived_at,
                ).where(among(session, Contact.id, ids))
            ):
                stored[record.id] = record
            for contact_id, email in session.execute(
                select(ContactEmail.contact_id, ContactEmail.email)
                .where(among(session, ContactEmail.contact_id, ids))
                .order_by(ContactEmail.id)
            ):
                stored_emails.setdefault(contact_id, []).append(email)

        new: list[tuple[dict[str, Any], CompanyRef | None]] = []
        existing: list[tuple[SourceRow, dict[str, Any], Any, CompanyRef | None]] = []
        for row, item in parsed:
            matched = sorted({owners[a] for a in item["emails"] if a in owners})
            if len(matched) > 1:
                named = ", ".join(f"#{i} {stored[i].name}" for i in matched)
                self.reject(row, f"its addresses belong to different contacts ({named})")
                continue
            contact: Any = stored[matched[0]] if matched else None
            if contact is not None and contact.archived_at is not None:
                self.reject(
                    row,
                    f"an address of an archived contact, {contact.name} (#{contact.id}), "
                    "which an admin can restore",
                )
                continue
            company: CompanyRef | None = None
            if item["company"]:
                company = self.companies.current(
                    contact.company_id if contact is not None else None, item["company"]
                ) or self.companies.for_contact(item["company"], item["emails"])
            if contact is not None:
                existing.append((row, item, contact, company))
            else:
                if company is None:
                    # As the API does: the company that an address's domain names, if any.
                    company = self.companies.for_domains(
                        d for a in item["emails"] if not self.companies.free_mail(d := domain_of(a))
                    )
                new.append((item, company))
        self.summary.companies_created += self.companies.create_pending()
        self._insert_contacts(new)
        for row, item, contact, company in existing:
            data: dict[str, Any] = {}
            for name in ("name", "phone", "job_title"):
                if item[name] is not None and item[name] != getattr(contact, name):
                    data[name] = item[name]
            have = stored_emails.get(contact.id, [])
            added = [a for a in item["emails"] if a not in have]
            if added:
                data["emails"] = have + added
            if company is not None and company.id != contact.company_id:
                data["company_id"] = company.id
            if not data:
                self.summary.unchanged += 1
                continue
            self._update(row, partial(update_contact, self.ctx, contact.id, data))

    def _insert_contacts(self, new: list[tuple[dict[str, Any], CompanyRef | None]]) -> None:
        if not new:
            return
        org_id, owner_id = self.ctx.org_id, self.ctx.user.id
        now = utcnow()
        params = []
        for item, company in new:
            name = item["name"] or item["emails"][0]
            params.append(
                {
                    "organization_id": org_id,
                    "name": name,
                    "name_key": name_key(name),
                    "phone": item["phone"],
                    "job_title": item["job_title"],
                    "company_id": company.id if company is not None else None,
                    "owner_id": owner_id,
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        ids = bulk_insert(self.session, CONTACTS, params, ids=True)
        bulk_insert(
            self.session,
            CONTACT_EMAILS,
            [
                {"organization_id": org_id, "contact_id": contact_id, "email": address}
                for (item, _), contact_id in zip(new, ids, strict=True)
                for address in item["emails"]
            ],
            ids=False,
        )
        self.summary.created += len(new)

    # Companies ---------------------------------------------------------------------------

    def _company_in(self, row: SourceRow) -> dict[str, Any]:
        domains: list[str] = []
        for raw in row.values.get("domains", []):
            domain = normalize_domain(raw)
            if domain is None or len(domain) > 253:
                raise BadRow(f"{raw!r} is not a domain")
            if domain not in domains and not self.companies.free_mail(domain):
                domains.append(domain)
        website = _limit(row.first("website"), 500, "website")
        if not domains and website:
            domain = normalize_domain(website)
            if domain is not None and not self.companies.free_mail(domain) and len(domain) < 254:
                domains.append(domain)
        name = row.first("name")
        if name is not None:
            name = " ".join(name.split())
        if not name and not domains:
            raise BadRow("no name and no domain")
        return {
            "name": _limit(name, 200, "name"),
            "domains": domains,
            "website": website,
            "phone": _limit(row.first("phone"), 50, "phone number"),
        }

    def _companies(self, rows: list[SourceRow]) -> None:
        directory = self.companies
        for row in rows:
            try:
                item = self._company_in(row)
            except BadRow as exc:
                self.reject(row, str(exc))
                continue
            keys = [("domain", d) for d in item["domains"]]
            if item["name"]:
                keys.append(("company", name_key(item["name"])))
            first = self._first_seen(keys, row.line)
            if first is not None:
                self.reject(row, f"the same company as line {first}")
                continue
            owners = list(
                dict.fromkeys(r for d in item["domains"] if (r := directory.by_domain.get(d)))
            )
            if any(r.archived for r in owners):
                archived = next(r for r in owners if r.archived)
                self.reject(
                    row,
                    f"a domain of an archived company, {archived.name} (#{archived.id}), "
                    "which an admin can restore",
                )
                continue
            if len(owners) > 1:
                named = ", ".join(f"#{r.id} {r.name}" for r in owners)
                self.reject(row, f"its domains belong to different companies ({named})")
                continue
            found = (
                owners[0] if owners else (directory.named(item["name"]) if item["name"] else None)
            )
            if found is None:
                name = item["name"] or company_name_from_domain(item["domains"][0])
                directory.new(name, item["domains"], item["website"], item["phone"])
                self.summary.created += 1
                continue
            if found.id is None:
                # Made by this very batch (by another row's domain): the file names it twice.
                self.reject(row, "the same company as an earlier row")
                continue
            data: dict[str, Any] = {}
            for name in ("name", "website", "phone"):
                if item[name] and item[name] != getattr(found, name):
                    data[name] = item[name]
            added = [d for d in item["domains"] if d not in found.domains]
            if added:
                data["domains"] = found.domains + added
            if not data:
                self.summary.unchanged += 1
                continue
            before = self.summary.updated
            self._update(row, partial(update_company, self.ctx, found.id, data))
            if self.summary.updated > before:
                for key in ("name", "website", "phone"):
                    if key in data:
                        setattr(found, key, data[key])
                for domain in added:
                    found.domains.append(domain)
                    directory.by_domain[domain] = found
                directory.by_name.setdefault(name_key(found.name), found)
        self.summary.companies_created += directory.create_pending()

    # Leads -------------------------------------------------------------------------------

    def _lead_in(self, row: SourceRow) -> dict[str, Any]:
        title = row.first("title")
        if not title:
            raise BadRow("no title")
        item: dict[str, Any] = {"title": _limit(" ".join(title.split()), 300, "title")}
        connector_id = row.first("connector_id")
        if connector_id is not None:
            if not connector_id.isdigit() or len(connector_id) > 18:
                raise BadRow(f"the Connector ID {connector_id!r} is not a number")
            item["connector_id"] = int(connector_id)
        item["external_id"] = _limit(row.first("external_id"), 200, "external id")
        try:
            if (text := row.first("stage")) is not None:
                item["stage"] = values.stage(text)
            if (text := row.first("expected_revenue")) is not None:
                item["expected_revenue"] = values.amount(text)
            if (text := row.first("probability")) is not None:
                item["probability"] = values.percent(text)
            if (text := row.first("close_date")) is not None:
                item["close_date"] = values.date(text)
        except values.BadValue as exc:
            raise BadRow(str(exc)) from exc
        if (text := row.first("description")) is not None:
            item["description"] = text
        if (text := row.first("lost_reason")) is not None:
            item["lost_reason"] = _limit(text, 500, "lost reason")
        email = row.first("contact_email")
        item["contact_email"] = normalize_email(email) if email else None
        item["company"] = row.first("company")
        return item

    def _leads(self, rows: list[SourceRow]) -> None:
        session, org_id = self.session, self.ctx.org_id
        parsed: list[tuple[SourceRow, dict[str, Any]]] = []
        for row in rows:
            try:
                item = self._lead_in(row)
            except BadRow as exc:
                self.reject(row, str(exc))
                continue
            keys: list[Any] = []
            if "connector_id" in item:
                keys.append(("lead", item["connector_id"]))
            if item["external_id"]:
                keys.append(("external", item["external_id"]))
            if not keys:
                keys.append(("title", name_key(item["title"]), item["contact_email"]))
            first = self._first_seen(keys, row.line)
            if first is not None:
                self.reject(row, f"the same lead as line {first}")
                continue
            parsed.append((row, item))
        if not parsed:
            return
        emails = {item["contact_email"] for _, item in parsed if item["contact_email"]}
        contacts: dict[str, tuple[int, int | None]] = {}
        if emails:
            for email, found_contact, found_company in session.execute(
                select(ContactEmail.email, Contact.id, Contact.company_id)
                .join(Contact, Contact.id == ContactEmail.contact_id)
                .where(
                    ContactEmail.organization_id == org_id,
                    among(session, ContactEmail.email, emails),
                    Contact.archived_at.is_(None),
                )
            ):
                contacts[email] = (found_contact, found_company)
        columns = (
            Lead.id,
            Lead.title,
            Lead.description,
            Lead.stage,
            Lead.expected_revenue,
            Lead.probability,
            Lead.close_date,
            Lead.lost_reason,
            Lead.contact_id,
            Lead.company_id,
            Lead.external_id,
            Lead.archived_at,
        )
        own_ids = [item["connector_id"] for _, item in parsed if "connector_id" in item]
        external_ids = [item["external_id"] for _, item in parsed if item["external_id"]]
        by_id: dict[int, Any] = {}
        by_external: dict[str, Any] = {}
        by_title: dict[tuple[str, int | None], Any] = {}
        if own_ids:
            for record in session.execute(
                select(*columns).where(
                    Lead.organization_id == org_id, among(session, Lead.id, own_ids)
                )
            ):
                by_id[record.id] = record
        if external_ids:
            for record in session.execute(
                select(*columns)
                .where(
                    Lead.organization_id == org_id, among(session, Lead.external_id, external_ids)
                )
                .order_by(Lead.id)
            ):
                by_external.setdefault(record.external_id, record)
        untagged = [
            (row, item)
            for row, item in parsed
            if not item["external_id"] and item.get("connector_id") not in by_id
        ]
        contact_ids = {
            contacts[e][0] for _, item in untagged if (e := item["contact_email"]) in contacts
        }
        loose_titles = {
            item["title"] for _, item in untagged if item["contact_email"] not in contacts
        }
        if contact_ids:
            for record in session.execute(
                select(*columns)
                .where(Lead.organization_id == org_id, among(session, Lead.contact_id, contact_ids))
                .order_by(Lead.id)
            ):
                by_title.setdefault((name_key(record.title), record.contact_id), record)
        if loose_titles:
            for record in session.execute(
                select(*columns)
                .where(
                    Lead.organization_id == org_id,
                    Lead.contact_id.is_(None),
                    among(session, Lead.title, loose_titles),
                )
                .order_by(Lead.id)
            ):
                by_title.setdefault((name_key(record.title), None), record)

        new_rows: list[dict[str, Any]] = []
        for row, item in parsed:
            contact = contacts.get(item["contact_email"]) if item["contact_email"] else None
            company = self.companies.named(item["company"]) if item["company"] else None
            contact_id = contact[0] if contact else None
            company_id = company.id if company else (contact[1] if contact else None)
            lead: Any = by_id.get(item.get("connector_id", -1))
            if lead is None and item["external_id"]:
                lead = by_external.get(item["external_id"])
            elif lead is None:
                lead = by_title.get((name_key(item["title"]), contact_id))
            if lead is None:
                stage = item.get("stage", LeadStage.NEW)
                try:
                    check_lost_reason(stage, item.get("lost_reason"))
                except ServiceError as exc:
                    self.reject(row, exc.message)
                    continue
                new_rows.append(
                    {
                        "organization_id": org_id,
                        "title": item["title"],
                        "description": item.get("description", ""),
                        "stage": stage.value,
                        "expected_revenue": item.get("expected_revenue"),
                        "probability": item.get("probability", 10),
                        "close_date": item.get("close_date"),
                        "lost_reason": item.get("lost_reason"),
                        "external_id": item["external_id"],
                        "contact_id": contact_id,
                        "company_id": company_id,
                        "owner_id": self.ctx.user.id,
                        "version": 1,
                        "created_at": utcnow(),
                        "updated_at": utcnow(),
                    }
                )
                continue
            if lead.archived_at is not None:
                self.reject(row, f"an archived lead, {lead.title} (#{lead.id})")
                continue
            data: dict[str, Any] = {}
            for name in (
                "title",
                "description",
                "stage",
                "expected_revenue",
                "probability",
                "close_date",
                "lost_reason",
            ):
                if name in item and item[name] is not None and not _same(item[name], lead, name):
                    data[name] = item[name]
            if "stage" in data and "lost_reason" in item:
                data["lost_reason"] = item["lost_reason"]
            if contact is not None and contact_id != lead.contact_id:
                data["contact_id"] = contact_id
            if company is not None and self.companies.current(lead.company_id, company.name):
                company = self.companies.by_id[lead.company_id]
            if company is not None and company.id != lead.company_id:
                data["company_id"] = company.id
            if not data:
                self.summary.unchanged += 1
                continue
            self._update(row, partial(update_lead, self.ctx, lead.id, data))
        bulk_insert(session, LEADS, new_rows, ids=False)
        self.summary.created += len(new_rows)


def _same(value: Any, stored: Any, name: str) -> bool:
    old = getattr(stored, name)
    if isinstance(value, Decimal) and old is not None:
        return bool(Decimal(old) == value)
    if isinstance(value, dt.date) and isinstance(old, dt.datetime):
        return bool(old.date() == value)
    if isinstance(value, str) and isinstance(old, str):
        return value.strip() == old.strip()
    return bool(value == old)


def import_rows(
    ctx: Ctx,
    kind: str,
    rows: Iterable[SourceRow],
    *,
    commit: Callable[[], None],
    reject: Reject,
    progress: Callable[[int], None] | None = None,
    batch_size: int = BATCH_SIZE,
) -> Summary:
    """Import `kind` ("contacts", "companies" or "leads") from the rows into ctx's organization.

    `commit` is called after each batch (the caller commits, or does nothing for a dry run
    and rolls back at the end); `reject` gets each row that is not imported, with why.
    """
    importer = Importer(ctx, commit=commit, reject=reject, progress=progress, batch_size=batch_size)
    return importer.run(kind, rows)

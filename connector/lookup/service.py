"""Who is this? Looking senders up by address, record cards, and search across records."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, String, and_, event, func, literal, or_, select, union_all
from sqlalchemy.orm import Session, sessionmaker

from connector.activities.service import recent_activities
from connector.addresses import display_name, domain_of, normalize_email
from connector.errors import InvalidInput
from connector.lifecycle.merge import possible_duplicates
from connector.lookup import view_models as vm
from connector.mail.following import card_followers
from connector.mail.messages import list_messages
from connector.mail.models import InboundMessage
from connector.orgs.context import Ctx
from connector.records.history import history_of
from connector.records.models import (
    CLOSED_LEAD_STAGES,
    CLOSED_TICKET_STATUSES,
    Company,
    CompanyDomain,
    Contact,
    ContactEmail,
    Lead,
    RecordType,
    Task,
    Ticket,
)
from connector.records.refs import RecordRef
from connector.records.service import (
    company_for_domain,
    contact_for_email,
    get_record,
    live,
    propose_contact,
)
from connector.store import SharedStore, StoreUnavailable

log = logging.getLogger(__name__)

MAX_LOOKUP_ADDRESSES = 50
OPEN_ITEMS_LIMIT = 20
CARD_HISTORY_LIMIT = 20
# The latest messages that came in through team addresses, on a person's card.
CARD_INBOUND_LIMIT = 5
# The latest messages written from the record (a failed one among them shows as failed).
CARD_MESSAGES_LIMIT = 5

# Cache ------------------------------------------------------------------------
# Every cached answer's key holds its organization's generation number. Any
# committed write to that organization bumps the number, so no stale answer is
# read again. A reader takes the generation before it reads the database, so an
# answer computed from data older than a concurrent write lands under the old
# generation, where nobody looks.


def _generation_key(org_id: int) -> str:
    return f"lookup-gen:{org_id}"


def _answer_key(org_id: int, generation: bytes | None, address: str) -> str:
    digest = hashlib.sha256(address.encode()).hexdigest()[:32]
    return f"lookup:{org_id}:{(generation or b'0').decode()}:{digest}"


def invalidate_org(store: SharedStore, org_id: int) -> None:
    store.incr(_generation_key(org_id))


def track_writes(factory: sessionmaker[Session], store: SharedStore) -> None:
    """Invalidate an organization's cached lookups whenever a commit changed its records."""

    @event.listens_for(factory, "after_flush")
    def _collect(session: Session, _context: Any) -> None:
        touched = session.info.setdefault("touched_orgs", set())
        for obj in (*session.new, *session.dirty, *session.deleted):
            org_id = getattr(obj, "organization_id", None)
            if org_id is None and hasattr(obj, "activity"):
                org_id = obj.activity.organization_id
            if org_id is not None:
                touched.add(org_id)

    @event.listens_for(factory, "after_commit")
    def _invalidate(session: Session) -> None:
        for org_id in session.info.pop("touched_orgs", set()):
            try:
                invalidate_org(store, org_id)
            except StoreUnavailable as exc:
                # The write is committed; the cache is optional. Answers cached before it
                # expire within LOOKUP_CACHE_SECONDS, which bounds how stale one can be.
                log.warning("Lookup cache of organization %s not invalidated: %s", org_id, exc)

    @event.listens_for(factory, "after_rollback")
    def _forget(session: Session) -> None:
        # A rollback of the whole transaction writes nothing; a savepoint's
        # rollback keeps the set (an extra invalidation is harmless).
        if not session.in_transaction():
            session.info.pop("touched_orgs", None)


# Cards ------------------------------------------------------------------------


def _open_leads(ctx: Ctx, where: Any) -> list[Lead]:
    query = (
        select(Lead)
        .where(
            Lead.organization_id == ctx.org_id,
            where,
            Lead.stage.not_in(CLOSED_LEAD_STAGES),
            Lead.archived_at.is_(None),
        )
        .order_by(Lead.created_at.desc(), Lead.id.desc())
        .limit(OPEN_ITEMS_LIMIT)
    )
    return list(ctx.session.scalars(query))


def _open_tickets(ctx: Ctx, where: Any) -> list[Ticket]:
    query = (
        select(Ticket)
        .where(
            Ticket.organization_id == ctx.org_id,
            where,
            Ticket.status.not_in(CLOSED_TICKET_STATUSES),
            Ticket.archived_at.is_(None),
        )
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
        .limit(OPEN_ITEMS_LIMIT)
    )
    return list(ctx.session.scalars(query))


def _open_tasks(ctx: Ctx, refs: Sequence[RecordRef]) -> list[Task]:
    if not refs:
        return []
    about = or_(*[(Task.record_type == r.type) & (Task.record_id == r.id) for r in refs])
    query = (
        select(Task)
        .where(Task.organization_id == ctx.org_id, Task.done.is_(False), about)
        .order_by(Task.due_date.is_(None), Task.due_date, Task.id)
        .limit(OPEN_ITEMS_LIMIT)
    )
    return list(ctx.session.scalars(query))


def _followers(ctx: Ctx, ref: RecordRef, owner_id: int | None) -> list[dict[str, Any]]:
    """Without writing (cards are read on paths that never commit): an owner without a row
    yet shows as following, with a null id (connector.mail.following.card_followers)."""
    return card_followers(ctx.session, ctx.org_id, ref, owner_id, ctx.user.id)


def _history(ctx: Ctx, ref: RecordRef) -> list[dict[str, Any]]:
    return [vm.history_entry(change) for change in history_of(ctx, ref, CARD_HISTORY_LIMIT)]


def _record_of(model: Any, record_type: str, org_id: int) -> Any:
    """A LEFT JOIN's condition: the inbound message's record, if it is of this type and not
    archived (an archived record is no link to follow). By name: an alias that creates
    tasks stores "task", which is no RecordType."""
    live_only = [model.archived_at.is_(None)] if hasattr(model, "archived_at") else []
    return and_(
        InboundMessage.record_type == record_type,
        model.id == InboundMessage.record_id,
        model.organization_id == org_id,
        *live_only,
    )


def inbound_of(ctx: Ctx, addresses: Sequence[str]) -> list[dict[str, Any]]:
    """The latest messages from these addresses that came in to the team's addresses (an
    alias, or a record's reply address), each with the record it went to: one query, on the
    index (organization_id, sender, received_at), with the records' titles joined in.

    By sender, not by record: routing fills `sender` for every message it reads, and a
    record's other correspondents' mail is not this person's."""
    if not addresses:
        return []
    org_id = ctx.org_id
    query = (
        select(InboundMessage, Lead.title, Ticket.subject, Task.title, Contact.name)
        .outerjoin(Lead, _record_of(Lead, "lead", org_id))
        .outerjoin(Ticket, _record_of(Ticket, "ticket", org_id))
        .outerjoin(Task, _record_of(Task, "task", org_id))
        .outerjoin(Contact, _record_of(Contact, "contact", org_id))
        .where(
            InboundMessage.organization_id == org_id,
            InboundMessage.sender.in_(list(addresses)),
        )
        .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
        .limit(CARD_INBOUND_LIMIT)
    )
    return [
        vm.inbound_summary(
            message,
            message.alias.address if message.alias else None,
            next((t for t in (lead, ticket, task, contact) if t is not None), None),
        )
        for message, lead, ticket, task, contact in ctx.session.execute(query)
    ]


def _messages(ctx: Ctx, ref: RecordRef) -> list[dict[str, Any]]:
    return [
        vm.message_summary(row, author)
        for row, author in list_messages(ctx, ref, CARD_MESSAGES_LIMIT)
    ]


def contact_card(ctx: Ctx, contact: Contact) -> dict[str, Any]:
    leads = _open_leads(ctx, Lead.contact_id == contact.id)
    tickets = _open_tickets(ctx, Ticket.contact_id == contact.id)
    refs = [RecordRef(RecordType.CONTACT, contact.id)]
    refs += [RecordRef(RecordType.LEAD, lead.id) for lead in leads]
    refs += [RecordRef(RecordType.TICKET, ticket.id) for ticket in tickets]
    company = live(contact.company)
    return {
        "contact": vm.contact_summary(contact),
        "company": vm.company_summary(company) if company is not None else None,
        "leads": [vm.lead_summary(lead) for lead in leads],
        "tickets": [vm.ticket_summary(t) for t in tickets],
        "tasks": [vm.task_summary(t) for t in _open_tasks(ctx, refs)],
        "activities": [vm.activity_summary(a) for a in recent_activities(ctx, refs[0])],
        "history": _history(ctx, refs[0]),
        "messages": _messages(ctx, refs[0]),
        "inbound": inbound_of(ctx, [e.email for e in contact.emails]),
        "bouncing": vm.bouncing_addresses(list(contact.emails)),
        "followers": _followers(ctx, refs[0], contact.owner_id),
        "duplicates": [
            {"id": d.id, "name": d.name, "emails": [e.email for e in d.emails]}
            for d in possible_duplicates(ctx, contact)
        ],
    }


def company_card(ctx: Ctx, company: Company) -> dict[str, Any]:
    ref = RecordRef(RecordType.COMPANY, company.id)
    return {
        "contact": None,
        "company": vm.company_summary(company),
        "leads": [
            vm.lead_summary(lead) for lead in _open_leads(ctx, Lead.company_id == company.id)
        ],
        "tickets": [
            vm.ticket_summary(t) for t in _open_tickets(ctx, Ticket.company_id == company.id)
        ],
        "tasks": [vm.task_summary(t) for t in _open_tasks(ctx, [ref])],
        "activities": [vm.activity_summary(a) for a in recent_activities(ctx, ref)],
        "history": _history(ctx, ref),
        "messages": _messages(ctx, ref),
        "followers": _followers(ctx, ref, company.owner_id),
    }


def record_card(ctx: Ctx, ref: RecordRef) -> dict[str, Any]:
    """A record with what surrounds it: what a card or the task pane shows when it is opened."""
    record = get_record(ctx.session, ctx.org_id, ref)
    if ref.type is RecordType.CONTACT:
        return contact_card(ctx, record)
    if ref.type is RecordType.COMPANY:
        return company_card(ctx, record)
    summary = vm.lead_summary(record) if ref.type is RecordType.LEAD else vm.ticket_summary(record)
    contact, company = live(record.contact), live(record.company)
    return {
        ref.type.value: summary,
        "contact": vm.contact_summary(contact) if contact is not None else None,
        "company": vm.company_summary(company) if company is not None else None,
        "tasks": [vm.task_summary(t) for t in _open_tasks(ctx, [ref])],
        "activities": [vm.activity_summary(a) for a in recent_activities(ctx, ref)],
        "history": _history(ctx, ref),
        "messages": _messages(ctx, ref),
        "followers": _followers(ctx, ref, record.owner_id),
    }


def recent_leads(ctx: Ctx, owner_id: int, limit: int = 8) -> list[Lead]:
    """The owner's open leads, newest first (the Gmail homepage lists them)."""
    return _open_leads(ctx, Lead.owner_id == owner_id)[:limit]


# Lookup ----------------------------------------------------------------------


def _lookup_one(ctx: Ctx, address: str) -> dict[str, Any]:
    domain = domain_of(address)
    free_mail = domain in ctx.settings.free_mail
    contact = contact_for_email(ctx.session, ctx.org_id, address, include_archived=True)
    archived = None
    if contact is not None and contact.archived_at is not None:
        # The address is an archived contact's: no contact to show, and none to create
        # (it would be refused); an admin can restore that one.
        archived, contact = {"id": contact.id, "name": contact.name}, None
    if contact is not None:
        card = contact_card(ctx, contact)
        proposal = None
    else:
        company = None if free_mail else company_for_domain(ctx.session, ctx.org_id, domain)
        card = (
            company_card(ctx, company)
            if company is not None
            else {
                "contact": None,
                "company": None,
                "leads": [],
                "tickets": [],
                "tasks": [],
                "activities": [],
                "history": [],
                "messages": [],
                "followers": [],
            }
        )
        proposal = None if archived else propose_contact(ctx, address)
    return {
        "email": address,
        "free_mail": free_mail,
        **card,
        "proposal": proposal,
        "archived_contact": archived,
    }


def lookup(ctx: Ctx, addresses: Sequence[str]) -> list[dict[str, Any]]:
    """One answer per distinct address, in the order given, served from the cache when it can.

    What is no email address ("Mailer-Daemon", "<>", "bob@intranet" among a message's
    recipients) is left out, so that one odd recipient does not hide everyone else; a
    lookup with no address at all is bad input.
    """
    cleaned: list[str] = []
    names: dict[str, str] = {}
    for raw in addresses:
        address = normalize_email(raw)
        if address is not None and address not in cleaned:
            cleaned.append(address)
            names[address] = display_name(raw)
    if not cleaned:
        given = ", ".join(repr(address) for address in addresses[:5])
        raise InvalidInput(
            f"Give at least one email address: none of these is one ({given}).",
            {"email": list(addresses)},
        )
    if len(cleaned) > MAX_LOOKUP_ADDRESSES:
        raise InvalidInput(
            f"At most {MAX_LOOKUP_ADDRESSES} addresses in one lookup.", {"email": ["too many"]}
        )
    answers: list[dict[str, Any]] = []
    try:
        generation = ctx.store.get(_generation_key(ctx.org_id))
        for address in cleaned:
            key = _answer_key(ctx.org_id, generation, address)
            cached = ctx.store.get(key)
            if cached is not None:
                answers.append(json.loads(cached))
                continue
            answers.append(_lookup_one(ctx, address))
            ctx.store.set(key, json.dumps(answers[-1]).encode(), ctx.settings.lookup_cache_seconds)
    except StoreUnavailable as exc:
        # The cache is optional: the rest comes from the database, without waiting on the
        # store again (a hung Redis costs its 2 s timeout once, not once per address).
        log.warning("Lookup without the cache: %s", exc)
        answers += [_lookup_one(ctx, address) for address in cleaned[len(answers) :]]
    # The name the sender gives ("Bob Smith <bobsmith1987@...>") is the best guess at a new
    # contact's name. Put in after the cache: an answer is cached by address alone.
    for answer in answers:
        proposal, name = answer.get("proposal"), names.get(answer["email"])
        if proposal and name:
            answer["proposal"] = {**proposal, "name": name}
        # An answer is cached for the whole organization: which follower is the caller
        # is the caller's own.
        answer["followers"] = vm.followers_seen_by(answer.get("followers", []), ctx.user.id)
    return answers


# Search ----------------------------------------------------------------------

SEARCHABLE = tuple(RecordType)


# A query of search results: type, id, title and subtitle (text, a lead's stage or a
# ticket's status).
SearchQuery = Select[str, int, str, Any]


def _search_queries(org_id: int, needle: str, types: Sequence[RecordType]) -> list[SearchQuery]:
    """One SELECT (type, id, title, subtitle) per record type; matching is case-insensitive."""

    def has(column: Any) -> Any:
        return func.lower(column).contains(needle, autoescape=True)

    queries: list[SearchQuery] = []
    if RecordType.CONTACT in types:
        by_email = select(ContactEmail.contact_id).where(
            ContactEmail.organization_id == org_id, has(ContactEmail.email)
        )
        queries.append(
            select(
                literal("contact", String).label("type"),
                Contact.id.label("id"),
                Contact.name.label("title"),
                func.coalesce(Contact.job_title, "").label("subtitle"),
            ).where(
                Contact.organization_id == org_id,
                Contact.archived_at.is_(None),
                or_(has(Contact.name), Contact.id.in_(by_email)),
            )
        )
    if RecordType.COMPANY in types:
        by_domain = select(CompanyDomain.company_id).where(
            CompanyDomain.organization_id == org_id, has(CompanyDomain.domain)
        )
        queries.append(
            select(
                literal("company", String).label("type"),
                Company.id.label("id"),
                Company.name.label("title"),
                func.coalesce(Company.website, "").label("subtitle"),
            ).where(
                Company.organization_id == org_id,
                Company.archived_at.is_(None),
                or_(has(Company.name), Company.id.in_(by_domain)),
            )
        )
    if RecordType.LEAD in types:
        queries.append(
            select(
                literal("lead", String).label("type"),
                Lead.id.label("id"),
                Lead.title.label("title"),
                Lead.stage.label("subtitle"),
            ).where(Lead.organization_id == org_id, Lead.archived_at.is_(None), has(Lead.title))
        )
    if RecordType.TICKET in types:
        queries.append(
            select(
                literal("ticket", String).label("type"),
                Ticket.id.label("id"),
                Ticket.subject.label("title"),
                Ticket.status.label("subtitle"),
            ).where(
                Ticket.organization_id == org_id,
                Ticket.archived_at.is_(None),
                has(Ticket.subject),
            )
        )
    return queries


def _describe(ctx: Ctx, results: list[dict[str, Any]]) -> None:
    """Say who or what each result is, so that two "Ana Lima"s can be told apart: a
    contact's job, company and address, a company's domain, a lead's or a ticket's stage or
    status and whom it is for. One query per type on the page, not one per result."""

    def ids(kind: str) -> list[int]:
        return [r["id"] for r in results if r["type"] == kind]

    def loaded(model: Any, kind: str) -> dict[int, Any]:
        wanted = ids(kind)
        if not wanted:
            return {}
        return {r.id: r for r in ctx.session.scalars(select(model).where(model.id.in_(wanted)))}

    contacts = loaded(Contact, "contact")
    companies = loaded(Company, "company")
    leads = loaded(Lead, "lead")
    tickets = loaded(Ticket, "ticket")
    for result in results:
        record = {"contact": contacts, "company": companies, "lead": leads, "ticket": tickets}[
            result["type"]
        ].get(result["id"])
        if record is None:
            continue
        parts: list[str | None]
        if result["type"] == "contact":
            company = live(record.company)
            job = " at ".join(p for p in (record.job_title, company and company.name) if p)
            email = record.emails[0].email if record.emails else None
            result["email"] = email
            parts = [job, email]
        elif result["type"] == "company":
            parts = [", ".join(d.domain for d in record.domains[:2]) or record.website]
        else:
            state = record.stage if result["type"] == "lead" else record.status
            whom = live(record.contact) or live(record.company)
            parts = [str(state).capitalize(), whom.name if whom else None]
        result["subtitle"] = " · ".join(p for p in parts if p)


def search(
    ctx: Ctx,
    text: str,
    types: Sequence[RecordType] = SEARCHABLE,
    page: int = 1,
    per_page: int = 20,
) -> dict[str, Any]:
    needle = text.strip().lower()
    if len(needle) < 2:
        raise InvalidInput("Search for at least two characters.", {"q": ["too short"]})
    combined = union_all(*_search_queries(ctx.org_id, needle, types or SEARCHABLE)).subquery()
    total = ctx.session.scalar(select(func.count()).select_from(combined)) or 0
    rows = ctx.session.execute(
        select(combined)
        .order_by(func.lower(combined.c.title), combined.c.type, combined.c.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    results = [
        {"type": row.type, "id": row.id, "title": row.title, "subtitle": row.subtitle or ""}
        for row in rows
    ]
    _describe(ctx, results)
    return {
        "results": results,
        "page": page,
        "per_page": per_page,
        "total": total,
    }

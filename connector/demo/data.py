"""The demo organization: realistic, deterministic records to try the add-ins on.

`load_demo` is idempotent: when the organization exists it writes nothing (but
the demo key, should its hash be missing, and the demo mail domain and aliases,
should they be missing) and answers with the same key, which is derived from
the secret key rather than stored.

The records come from a `random.Random(42)` and the word lists beside this
module, so two loads give the same records (dates are relative to today). Rows
are written with bulk INSERTs in batches, which keeps 20,000 contacts quick.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from connector.activities.html_text import text_to_html
from connector.activities.models import Activity, ActivityKind, ActivityLink
from connector.email_templates.models import EmailTemplate
from connector.mail.aliases import alias_for_address, create_alias
from connector.mail.models import Creates
from connector.orgs.models import ApiKey, Organization, Role, User
from connector.orgs.service import create_user, derived_key, hash_key, store_key
from connector.orm import Base, utcnow
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
    name_key,
)

ORG_NAME = "Demo Company"
USER_EMAIL = "demo@connector.example"
USER_NAME = "Dana Demo"
KEY_LABEL = "demo"
# The demo organization's mail domain (.test is reserved: it is nobody's real domain) and
# its team addresses, which `./dev start`'s mail gateway receives for.
MAIL_DOMAIN = "demo.connector.test"
ALIASES = ((f"sales@{MAIL_DOMAIN}", Creates.LEAD), (f"support@{MAIL_DOMAIN}", Creates.TICKET))
SEED = 42
BATCH = 2000
# Logged emails: 1-3 for each of the first contacts, then sparser, and never more than this.
DENSE_EMAIL_CONTACTS = 100
MAX_EMAILS = 400
MAX_NOTES = 100
RENDER_NULLS = {"render_nulls": True}

FREE_MAIL_DOMAINS = ("gmail.com", "gmail.com", "outlook.com")
# Top-level domains with weights, and how phone numbers look there (fictional ranges
# where the country has one: 555-01xx, Ofcom's drama numbers, France's 01 99 00).
TLDS = (("com", 58), ("io", 12), ("co.uk", 12), ("de", 6), ("net", 6), ("fr", 3), ("nl", 3))
US_AREA_CODES = ("206", "212", "303", "312", "415", "512", "617", "646", "702", "919")
JOB_TITLES = (
    "CEO",
    "COO",
    "CTO",
    "CFO",
    "Head of Procurement",
    "Procurement Specialist",
    "Operations Manager",
    "IT Director",
    "IT Administrator",
    "Office Manager",
    "Purchasing Lead",
    "Finance Controller",
    "Accounts Payable Clerk",
    "Product Manager",
    "Customer Success Lead",
    "Sales Director",
    "Account Executive",
    "Marketing Manager",
    "HR Business Partner",
    "Software Engineer",
    "Project Manager",
    "Executive Assistant",
)
LEAD_TITLES = (
    "Renewal {year} - {seats} seats",
    "Renewal {year} - {seats} seats",
    "Upgrade to Enterprise - {seats} seats",
    "New office rollout - {seats} seats",
    "Pilot for the {team} team - {seats} seats",
    "Annual support contract {year}",
    "Add-on: advanced reporting",
    "Onboarding and training package",
)
TEAMS = ("sales", "support", "finance", "logistics", "marketing", "operations", "HR")
SEAT_COUNTS = (5, 10, 15, 20, 25, 40, 50, 75, 100, 150, 250, 500)
PRICES_PER_SEAT = (180, 240, 300, 360, 480)
# Stage weights, and the probability range that goes with each stage.
LEAD_STAGES = (
    (LeadStage.NEW, 25, (5, 20)),
    (LeadStage.QUALIFIED, 25, (20, 40)),
    (LeadStage.PROPOSITION, 20, (50, 80)),
    (LeadStage.WON, 15, (100, 100)),
    (LeadStage.LOST, 15, (0, 0)),
)
# Why lost leads were lost (taken in turn, so that the random draws stay as they were).
LOST_REASONS = (
    "Went with a competitor",
    "No budget this year",
    "Project cancelled",
    "Price too high",
    "No answer after the proposal",
)
TICKETS = (
    ("Cannot export invoices to PDF", "The export button spins and nothing is downloaded."),
    ("Login fails after password reset", "The new password is rejected on the first sign-in."),
    ("Calendar sync stopped", "Meetings booked since Tuesday do not show up any more."),
    ("Invoice shows the wrong VAT rate", "Last month's invoice uses 19% instead of 20%."),
    ("Please add a second admin", "Our IT lead needs admin rights while I am on leave."),
    ("Reports load slowly since Monday", "The monthly revenue report takes over a minute."),
    ("Mobile app crashes on start", "Happens on Android 14 after the latest update."),
    ("How do I import contacts from CSV?", "We have about 3,000 contacts in a spreadsheet."),
    ("Duplicate contacts after import", "Every contact from the import appears twice."),
    ("Email notifications not arriving", "Nobody on the team receives the daily digest."),
    ("Request: single sign-on with Entra ID", "Our security team requires SSO for all tools."),
    ("Charged twice this month", "Two identical payments went out on the 1st."),
)
TICKET_STATUSES = (
    (TicketStatus.NEW, 15),
    (TicketStatus.OPEN, 30),
    (TicketStatus.PENDING, 15),
    (TicketStatus.RESOLVED, 25),
    (TicketStatus.CLOSED, 15),
)
TICKET_PRIORITIES = (
    (TicketPriority.LOW, 20),
    (TicketPriority.NORMAL, 50),
    (TicketPriority.HIGH, 22),
    (TicketPriority.URGENT, 8),
)
TASK_TITLES = {
    RecordType.CONTACT: (
        "Call {first} back about pricing",
        "Send {first} the product overview",
        "Schedule a check-in call with {first}",
        "Introduce {first} to the support team",
        "Update {first}'s contact details",
    ),
    RecordType.LEAD: (
        "Send the updated quote",
        "Prepare the renewal offer",
        "Book a demo with {first}",
        "Follow up on the contract",
        "Confirm the number of seats",
    ),
    RecordType.TICKET: (
        "Check the fix with {first}",
        "Escalate to engineering",
        "Send {first} the workaround",
        "Ask {first} for a screenshot",
    ),
}
TASK_RECORD_TYPES = ((RecordType.CONTACT, 40), (RecordType.LEAD, 40), (RecordType.TICKET, 20))
# Logged emails: (subject, body) with {first} (the dear), {company}, {topic}, {seats}, {number}.
GENERAL_EMAILS = (
    (
        "Question about our subscription",
        "Hi Dana,\n\nQuick question: can we move some of our seats from the yearly plan to "
        "the monthly one, or do they all have to be on the same plan?\n\nThanks in advance,",
    ),
    (
        "Meeting next week?",
        "Hello Dana,\n\nWould you have 30 minutes next week to walk us through the new "
        "reporting features? Tuesday or Thursday afternoon would suit us best.\n\nBest regards,",
    ),
    (
        "Invoice {number}",
        "Hi,\n\nThe invoice {number} seems to use last year's prices. Could you check it and "
        "send a corrected copy to our accounts team?\n\nThank you,",
    ),
    (
        "Feedback on the trial",
        "Dana,\n\nThe team liked the trial a lot. Before we decide we have a few questions "
        "about permissions and about exporting data. Can we set up a call?\n\nCheers,",
    ),
    (
        "Introduction",
        "Hi Dana,\n\nI have taken over purchasing from my colleague, so I will be your contact "
        "from now on. Looking forward to working with you.\n\nKind regards,",
    ),
    (
        "Quote request",
        "Hello,\n\nCould you send us a quote for {seats} more seats, with the same discount as "
        "last year?\n\nThanks,",
    ),
)
LEAD_EMAILS = (
    (
        "Re: {topic}",
        "Hi Dana,\n\nThanks for the proposal for {topic}. We discussed it internally and would "
        "like an updated quote with the training package included.\n\nBest,",
    ),
    (
        "{topic}",
        "Hello Dana,\n\nFollowing our call: we are interested in {topic}. Could you tell us "
        "the next steps, and how long the rollout usually takes?\n\nRegards,",
    ),
)
TICKET_EMAILS = (
    (
        "{topic}",
        "Hi,\n\nWe have a problem: {detail} Could you have a look? This is blocking part "
        "of the team.\n\nThanks,",
    ),
    (
        "Re: {topic}",
        "Hello,\n\nThanks for the quick reply. Unfortunately the problem is still there: "
        "{detail_lower} Let me know if you need more details.\n\nBest regards,",
    ),
)
NOTES = (
    "{first} prefers a call in the morning. Decision expected this quarter.",
    "Met {first} at the trade fair. Interested in the reporting add-on.",
    "{first} asked for references from customers in the same industry.",
    "Budget is approved for next year; {first} will confirm the number of seats.",
    "{first} is on leave until the end of the month; follow up afterwards.",
)
TEMPLATES = (
    (
        "Thanks for reaching out",
        "Thanks for reaching out, {{ contact.first_name }}",
        "<p>Hi {{ contact.first_name }},</p>"
        "<p>Thank you for your message. I will get back to you within one business day.</p>"
        "<p>Best regards,<br>{{ user.name }}</p>",
    ),
    (
        "Meeting follow-up",
        "Following up on our meeting - {{ company.name }}",
        "<p>Hello {{ contact.name }},</p>"
        "<p>Thank you for your time today. As promised, here is a short summary for the "
        "{{ company.name }} team, with the next steps we agreed on.</p>"
        "<p>Kind regards,<br>{{ user.name }}</p>",
    ),
    (
        "Quote",
        "Your quote: {{ lead.title }}",
        "<p>Dear {{ contact.first_name }},</p>"
        "<p>Please find our quote for <b>{{ lead.title }}</b> attached. "
        "It is valid for 30 days.</p>"
        "<p>Kind regards,<br>{{ user.name }}</p>",
    ),
)


@dataclass(frozen=True)
class DemoResult:
    org_name: str
    user_email: str
    api_key: str
    created: bool  # False when the demo org existed already (then nothing was changed)


def load_demo(
    session: Session, secret_key: str, *, contacts: int = 60, companies: int = 20
) -> DemoResult:
    """Create the demo organization with its records, unless it exists; flushes, never commits."""
    key = derived_key(secret_key, KEY_LABEL)
    org = session.scalar(select(Organization).where(Organization.name == ORG_NAME))
    if org is not None:
        user = session.scalar(
            select(User).where(User.email == USER_EMAIL, User.organization_id == org.id)
        )
        known = session.scalar(select(ApiKey.id).where(ApiKey.key_hash == hash_key(key)))
        if user is not None and known is None:
            store_key(session, user, key, KEY_LABEL)
        _mail(session, org, user)
        return DemoResult(ORG_NAME, USER_EMAIL, key, created=False)

    org = Organization(name=ORG_NAME)
    session.add(org)
    session.flush()
    user = create_user(session, org, USER_EMAIL, USER_NAME, Role.ADMIN)
    store_key(session, user, key, KEY_LABEL)
    _Generator(session, org.id, user.id).run(max(contacts, 0), max(companies, 0))
    _mail(session, org, user)
    return DemoResult(ORG_NAME, USER_EMAIL, key, created=True)


def _mail(session: Session, org: Organization, owner: User | None) -> None:
    """The demo mail domain and its aliases (sales@ opens leads, support@ tickets, both
    acknowledging), each unless there already. An organization that was given another
    mail domain keeps it, without demo aliases."""
    if org.mail_domain is None:
        holder = session.scalar(select(Organization).where(Organization.mail_domain == MAIL_DOMAIN))
        if holder is not None:
            return
        org.mail_domain = MAIL_DOMAIN
        session.flush()
    if org.mail_domain != MAIL_DOMAIN:
        return
    for address, creates in ALIASES:
        if alias_for_address(session, address) is None:
            create_alias(
                session, org, address=address, creates=creates, owner=owner, auto_reply=True
            )


@functools.cache
def _words(name: str) -> tuple[str, ...]:
    text = resources.files("connector.demo").joinpath(f"{name}.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def _ascii(text: str) -> str:
    """Lower-case ASCII letters, digits and hyphens: "Sørensen" -> "sorensen"."""
    folded = unicodedata.normalize("NFKD", text.replace("ø", "o").replace("Ø", "O"))
    folded = folded.encode("ascii", "ignore").decode().lower().replace("&", " and ")
    return re.sub(r"[^a-z0-9-]+", "", re.sub(r"\s+", "-", folded.strip())).strip("-")


def _weighted(rng: random.Random, options: Sequence[tuple[Any, ...]]) -> Any:
    return rng.choices(options, weights=[option[1] for option in options])[0]


@dataclass
class _Company:
    name: str
    domains: list[str]
    tld: str
    id: int = 0


@dataclass
class _Contact:
    first: str
    last: str
    company: _Company | None
    emails: list[str] = field(default_factory=list)
    id: int = 0
    lead: _Work | None = None
    ticket: _Work | None = None

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"


@dataclass
class _Work:
    """A lead or a ticket: its title and, for tickets, the description."""

    title: str
    detail: str = ""
    id: int = 0


class _Generator:
    def __init__(self, session: Session, org_id: int, user_id: int) -> None:
        self.session = session
        self.org_id = org_id
        self.user_id = user_id
        self.rng = random.Random(SEED)
        self.now = utcnow()
        self.today = self.now.date()

    def run(self, contact_count: int, company_count: int) -> None:
        companies = self._companies(company_count)
        contacts = self._contacts(contact_count, companies)
        self._leads(contacts)
        self._tickets(contacts)
        self._tasks(contacts)
        self._activities(contacts)
        self._insert(
            EmailTemplate,
            [
                {"organization_id": self.org_id, "name": n, "subject": s, "body_html": b}
                for n, s, b in TEMPLATES
            ],
        )

    # Writing

    def _insert(self, model: type[Base], rows: list[dict[str, Any]]) -> None:
        # render_nulls: else the ORM leaves None values out, and rows with and without
        # them could not share one multi-row INSERT.
        for start in range(0, len(rows), BATCH):
            self.session.execute(
                insert(model), rows[start : start + BATCH], execution_options=RENDER_NULLS
            )

    def _insert_with_ids(self, model: type[Base], rows: list[dict[str, Any]]) -> list[int]:
        """Insert the rows, answering their new ids in the rows' order."""
        id_column = model.__table__.c.id
        if self.session.connection().dialect.name == "sqlite":
            # SQLite cannot tie RETURNING rows to parameter sets, so ordered RETURNING
            # would insert row by row; instead number the rows after the largest id.
            # The transaction has written already, so it holds SQLite's write lock.
            first = (self.session.scalar(select(func.max(id_column))) or 0) + 1
            ids = list(range(first, first + len(rows)))
            for row, new_id in zip(rows, ids, strict=True):
                row["id"] = new_id
            self._insert(model, rows)
            return ids
        statement = insert(model).returning(id_column, sort_by_parameter_order=True)
        ids = []
        for start in range(0, len(rows), BATCH):
            batch = rows[start : start + BATCH]
            ids.extend(self.session.scalars(statement, batch, execution_options=RENDER_NULLS))
        return ids

    def _past(self, max_days: int, min_days: int = 0) -> dt.datetime:
        return self.now - dt.timedelta(seconds=self.rng.randint(min_days * 86400, max_days * 86400))

    def _office_hours(self, max_days: int) -> dt.datetime:
        """A moment in the last `max_days` days, on a weekday between 8:00 and 18:00 UTC."""
        rng = self.rng
        while True:
            day = self.today - dt.timedelta(days=rng.randint(0, max_days - 1))
            seconds = rng.randint(8 * 3600, 18 * 3600 - 1)
            moment = dt.datetime.combine(day, dt.time(), dt.UTC) + dt.timedelta(seconds=seconds)
            if day.weekday() < 5 and moment <= self.now:
                return moment

    def _phone(self, tld: str) -> str:
        rng = self.rng
        if tld == "co.uk":
            return f"+44 20 7946 0{rng.randint(0, 999):03d}"
        if tld == "fr":
            return f"+33 1 99 00 {rng.randint(0, 99):02d} {rng.randint(0, 99):02d}"
        if tld == "de":
            return f"+49 30 {rng.randint(100, 999)} {rng.randint(1000, 9999)}"
        if tld == "nl":
            return f"+31 20 {rng.randint(100, 999)} {rng.randint(1000, 9999)}"
        return f"+1 {rng.choice(US_AREA_CODES)} 555 01{rng.randint(0, 99):02d}"

    # Records

    def _company_names(self, count: int) -> list[str]:
        combos = [f"{w} {k}" for w in _words("company_words") for k in _words("company_kinds")]
        self.rng.shuffle(combos)
        names = combos[:count]
        suffixes = ("Group", "International", "Holdings", "& Co")
        round_ = 0
        while len(names) < count:
            suffix = suffixes[round_ % len(suffixes)]
            extra = "" if round_ < len(suffixes) else f" {round_ // len(suffixes) + 1}"
            names += [f"{name} {suffix}{extra}" for name in combos[: count - len(names)]]
            round_ += 1
        return names

    def _companies(self, count: int) -> list[_Company]:
        rng = self.rng
        used: set[str] = set()
        companies = []
        for name in self._company_names(count):
            slug = _ascii(name)
            tld = _weighted(rng, TLDS)[0]
            domain = f"{slug}.{tld}"
            number = 2
            while domain in used:
                domain, number = f"{slug}-{number}.{tld}", number + 1
            domains = [domain]
            if rng.random() < 0.3:
                word = slug.split("-")[0]
                candidates = [f"{slug.replace('-', '')}.com", f"{word}.io", f"{slug}.co.uk"]
                rng.shuffle(candidates)
                second = next((d for d in candidates if d not in used and d != domain), None)
                if second is not None:
                    domains.append(second)
            used.update(domains)
            companies.append(_Company(name, domains, tld))
        rows = [
            {
                "organization_id": self.org_id,
                "name": company.name,
                "website": f"https://www.{company.domains[0]}",
                "phone": self._phone(company.tld),
                "owner_id": self.user_id,
                **self._created_and_updated(730, 180),
            }
            for company in companies
        ]
        for company, company_id in zip(
            companies, self._insert_with_ids(Company, rows), strict=True
        ):
            company.id = company_id
        self._insert(
            CompanyDomain,
            [
                {"organization_id": self.org_id, "company_id": company.id, "domain": domain}
                for company in companies
                for domain in company.domains
            ],
        )
        return companies

    def _assign_companies(self, count: int, companies: list[_Company]) -> list[_Company | None]:
        """Each contact's company: every company gets one first, about 5% get none."""
        rng = self.rng
        without = round(count * 0.05) if companies else count
        if count >= len(companies) > 0:
            without = min(without, count - len(companies))
        with_company = count - without
        shuffled = companies[:]
        rng.shuffle(shuffled)
        assigned: list[_Company | None] = list(shuffled[:with_company])
        if with_company > len(companies):
            weights = [rng.choice((1, 1, 1, 2, 3, 5)) for _ in companies]
            assigned += rng.choices(companies, weights=weights, k=with_company - len(companies))
            rng.shuffle(assigned)
        for position in sorted(rng.sample(range(count), without)):
            assigned.insert(position, None)
        return assigned

    def _address(self, contact: _Contact, used: set[str]) -> str:
        first, last = _ascii(contact.first), _ascii(contact.last).replace("-", "")
        if contact.company is None:
            domain = self.rng.choice(FREE_MAIL_DOMAINS)
            local = self.rng.choice(
                (f"{first}.{last}", f"{first}{last}{self.rng.randint(1, 99)}", f"{first}.{last}")
            )
        else:
            domain, local = contact.company.domains[0], f"{first}.{last}"
        address, number = f"{local}@{domain}", 2
        while address in used:
            address, number = f"{local}{number}@{domain}", number + 1
        used.add(address)
        return address

    def _contacts(self, count: int, companies: list[_Company]) -> list[_Contact]:
        rng = self.rng
        first_names, last_names = _words("first_names"), _words("last_names")
        used: set[str] = set()
        contacts = []
        rows = []
        for company in self._assign_companies(count, companies):
            contact = _Contact(rng.choice(first_names), rng.choice(last_names), company)
            contact.emails.append(self._address(contact, used))
            if company is not None and rng.random() < 0.25:
                first, last = _ascii(contact.first), _ascii(contact.last).replace("-", "")
                for local in (f"{first[0]}.{last}", f"{first[0]}{last}", f"{first}_{last}"):
                    address = f"{local}@{company.domains[-1]}"
                    if address not in used:
                        used.add(address)
                        contact.emails.append(address)
                        break
            contacts.append(contact)
            rows.append(
                {
                    "organization_id": self.org_id,
                    "name": contact.name,
                    "name_key": name_key(contact.name),
                    "phone": self._phone(company.tld if company else "com"),
                    "job_title": rng.choice(JOB_TITLES) if company else None,
                    "company_id": company.id if company else None,
                    "owner_id": self.user_id,
                    **self._created_and_updated(365, 30),
                }
            )
        for contact, contact_id in zip(contacts, self._insert_with_ids(Contact, rows), strict=True):
            contact.id = contact_id
        self._insert(
            ContactEmail,
            [
                {"organization_id": self.org_id, "contact_id": contact.id, "email": address}
                for contact in contacts
                for address in contact.emails
            ],
        )
        return contacts

    def _created_and_updated(self, most_days: int, fewest_days: int) -> dict[str, Any]:
        created = self._past(most_days, fewest_days)
        return {"created_at": created, "updated_at": created}

    def _work_row(self, contact: _Contact) -> dict[str, Any]:
        created = self._past(180, 1)
        updated = created + (self.now - created) * self.rng.random()
        return {
            "organization_id": self.org_id,
            "contact_id": contact.id,
            "company_id": contact.company.id if contact.company else None,
            "owner_id": self.user_id,
            "created_at": created,
            "updated_at": updated,
        }

    def _leads(self, contacts: list[_Contact]) -> None:
        rng = self.rng
        chosen = sorted(rng.sample(range(len(contacts)), len(contacts) // 2))
        leads: list[_Work] = []
        rows: list[dict[str, Any]] = []
        for index in chosen:
            contact = contacts[index]
            seats, template = rng.choice(SEAT_COUNTS), rng.choice(LEAD_TITLES)
            title = template.format(year=self.today.year + 1, seats=seats, team=rng.choice(TEAMS))
            if "{seats}" in template:
                revenue = seats * rng.choice(PRICES_PER_SEAT)
            else:
                revenue = rng.randrange(3_000, 60_000, 500)
            stage, _weight, (low, high) = _weighted(rng, LEAD_STAGES)
            for_whom = contact.company.name if contact.company else contact.name
            lead = _Work(title)
            contact.lead = lead
            leads.append(lead)
            rows.append(
                {
                    **self._work_row(contact),
                    "title": title,
                    "description": f"{title} for {for_whom}. Contact: {contact.name}.",
                    "stage": stage,
                    "expected_revenue": Decimal(revenue).quantize(Decimal("0.01")),
                    "probability": rng.randint(low // 5, high // 5) * 5,
                    "lost_reason": (
                        LOST_REASONS[len(rows) % len(LOST_REASONS)]
                        if stage == LeadStage.LOST
                        else None
                    ),
                }
            )
        for lead, lead_id in zip(leads, self._insert_with_ids(Lead, rows), strict=True):
            lead.id = lead_id

    def _tickets(self, contacts: list[_Contact]) -> None:
        rng = self.rng
        chosen = sorted(rng.sample(range(len(contacts)), len(contacts) // 3))
        tickets, rows = [], []
        for index in chosen:
            contact = contacts[index]
            subject, detail = rng.choice(TICKETS)
            ticket = _Work(subject, detail)
            contact.ticket = ticket
            tickets.append(ticket)
            rows.append(
                {
                    **self._work_row(contact),
                    "subject": subject,
                    "description": f"{detail}\n\nReported by {contact.name} by email.",
                    "status": _weighted(rng, TICKET_STATUSES)[0],
                    "priority": _weighted(rng, TICKET_PRIORITIES)[0],
                }
            )
        for ticket, ticket_id in zip(tickets, self._insert_with_ids(Ticket, rows), strict=True):
            ticket.id = ticket_id

    def _tasks(self, contacts: list[_Contact]) -> None:
        rng = self.rng
        with_lead = [c for c in contacts if c.lead is not None]
        with_ticket = [c for c in contacts if c.ticket is not None]
        rows = []
        for _ in range(len(contacts) // 4):
            record_type = _weighted(rng, TASK_RECORD_TYPES)[0]
            pool = {RecordType.LEAD: with_lead, RecordType.TICKET: with_ticket}.get(record_type)
            if not pool:
                record_type, pool = RecordType.CONTACT, contacts
            contact = rng.choice(pool)
            work = contact.lead if record_type is RecordType.LEAD else contact.ticket
            record_id = contact.id if record_type is RecordType.CONTACT or work is None else work.id
            rows.append(
                {
                    "organization_id": self.org_id,
                    "title": rng.choice(TASK_TITLES[record_type]).format(first=contact.first),
                    "due_date": self.today + dt.timedelta(days=rng.randint(-10, 30)),
                    "done": rng.random() < 0.25,
                    "assignee_id": self.user_id,
                    "record_type": record_type,
                    "record_id": record_id,
                    "created_at": self._past(30, 1),
                }
            )
        self._insert(Task, rows)

    def _email(
        self, contact: _Contact, number: int
    ) -> tuple[str, str, list[tuple[RecordType, int]]]:
        """Subject, body and linked records of a logged email from the contact."""
        rng = self.rng
        links = [(RecordType.CONTACT, contact.id)]
        if contact.company is not None and rng.random() < 0.5:
            links.append((RecordType.COMPANY, contact.company.id))
        topic = rng.random()
        if contact.ticket is not None and topic < 0.4:
            subject, body = rng.choice(TICKET_EMAILS)
            work = contact.ticket
            links.append((RecordType.TICKET, work.id))
        elif contact.lead is not None and topic < 0.7:
            subject, body = rng.choice(LEAD_EMAILS)
            work = contact.lead
            links.append((RecordType.LEAD, work.id))
        else:
            subject, body = rng.choice(GENERAL_EMAILS)
            work = _Work("")
        values = {
            "topic": work.title,
            "detail": work.detail,
            "detail_lower": work.detail[:1].lower() + work.detail[1:],
            "seats": rng.choice(SEAT_COUNTS),
            "number": f"INV-{self.today.year}-{1000 + number}",
        }
        signature = contact.name
        if contact.company is not None:
            signature += f"\n{contact.company.name}"
        return subject.format(**values), f"{body.format(**values)}\n{signature}", links

    def _activities(self, contacts: list[_Contact]) -> None:
        rng = self.rng
        activities: list[dict[str, Any]] = []
        all_links: list[list[tuple[RecordType, int]]] = []
        emails = notes = 0
        for index, contact in enumerate(contacts):
            if emails >= MAX_EMAILS and notes >= MAX_NOTES:
                break
            dense = index < DENSE_EMAIL_CONTACTS
            count = rng.randint(1, 3) if dense else int(rng.random() < 0.1)
            for _ in range(min(count, MAX_EMAILS - emails)):
                emails += 1
                subject, text, links = self._email(contact, emails)
                occurred = self._office_hours(60)
                activities.append(
                    {
                        "kind": ActivityKind.EMAIL,
                        "occurred_at": occurred,
                        "created_at": occurred,
                        "subject": subject,
                        "message_id": f"<demo-{emails}@connector.example>",
                        "from_address": f"{contact.name} <{contact.emails[0]}>",
                        "to_addresses": [f"{USER_NAME} <{USER_EMAIL}>"],
                        "body_text": text,
                        "body_html": text_to_html(text),
                    }
                )
                all_links.append(links)
            if notes < MAX_NOTES and rng.random() < (0.2 if dense else 0.02):
                notes += 1
                text = rng.choice(NOTES).format(first=contact.first)
                occurred = self._office_hours(60)
                links = [(RecordType.CONTACT, contact.id)]
                if contact.lead is not None:
                    links.append((RecordType.LEAD, contact.lead.id))
                activities.append(
                    {
                        "kind": ActivityKind.NOTE,
                        "occurred_at": occurred,
                        "created_at": occurred,
                        "subject": "",
                        "message_id": None,
                        "from_address": "",
                        "to_addresses": [],
                        "body_text": text,
                        "body_html": text_to_html(text),
                    }
                )
                all_links.append(links)
        for row in activities:
            row.update(
                organization_id=self.org_id,
                author_id=self.user_id,
                cc_addresses=[],
                omitted_attachments=[],
            )
        ids = self._insert_with_ids(Activity, activities)
        self._insert(
            ActivityLink,
            [
                {
                    "organization_id": self.org_id,
                    "activity_id": activity_id,
                    "record_type": record_type,
                    "record_id": record_id,
                }
                for activity_id, links in zip(ids, all_links, strict=True)
                for record_type, record_id in links
            ],
        )

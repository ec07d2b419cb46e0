"""The demo organization: realistic, deterministic records to try the add-ins on.

`load_demo` is idempotent: when the organization exists it writes nothing (but
the demo key, should it be missing) and answers with the same key, which is
derived from the secret key rather than stored.
"""

from __future__ import annotations

import datetime as dt
import html
import random
from dataclasses import dataclass
from decimal import Decimal
from itertools import cycle

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.activities.models import Activity, ActivityKind, ActivityLink
from connector.email_templates.models import EmailTemplate
from connector.orgs.models import ApiKey, Organization, Role, User
from connector.orgs.service import derived_key, hash_key, store_key
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

ORG_NAME = "Demo Company"
USER_EMAIL = "demo@connector.example"
USER_NAME = "Dana Demo"
MAX_EMAILS = 400
BATCH = 2000

FIRST_NAMES = [
    "Ada",
    "Alan",
    "Amara",
    "Anna",
    "Ben",
    "Carla",
    "Chen",
    "Clara",
    "David",
    "Diego",
    "Elena",
    "Emma",
    "Farah",
    "Felix",
    "Grace",
    "Hana",
    "Hugo",
    "Ines",
    "Ivan",
    "Jonas",
    "Julia",
    "Kai",
    "Karim",
    "Lea",
    "Leo",
    "Lina",
    "Lucas",
    "Maya",
    "Mei",
    "Mila",
    "Nadia",
    "Nils",
    "Noah",
    "Olga",
    "Omar",
    "Paula",
    "Priya",
    "Rafael",
    "Rosa",
    "Sam",
    "Sara",
    "Sofia",
    "Tariq",
    "Theo",
    "Uma",
    "Victor",
    "Wen",
    "Yara",
    "Yusuf",
    "Zoe",
]
LAST_NAMES = [
    "Almeida",
    "Bauer",
    "Becker",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Haddad",
    "Hansen",
    "Ito",
    "Jansen",
    "Kaur",
    "Kowalski",
    "Larsen",
    "Lopez",
    "Martin",
    "Moreau",
    "Muller",
    "Nakamura",
    "Novak",
    "Okafor",
    "Olsen",
    "Park",
    "Petrov",
    "Quinn",
    "Rossi",
    "Santos",
    "Schmidt",
    "Silva",
    "Singh",
    "Tanaka",
    "Torres",
    "Varga",
    "Weber",
    "Wong",
    "Yilmaz",
    "Zhang",
]
COMPANY_WORDS = [
    "Northwind",
    "Bluebird",
    "Summit",
    "Cedar",
    "Harbor",
    "Granite",
    "Aurora",
    "Meridian",
    "Pioneer",
    "Silverline",
    "Redwood",
    "Lakeside",
    "Brightpath",
    "Ironclad",
    "Evergreen",
    "Horizon",
    "Keystone",
    "Oakridge",
    "Riverbend",
    "Stonebridge",
    "Sunflower",
    "Tidewater",
    "Westfield",
    "Crescent",
    "Falcon",
    "Juniper",
    "Lighthouse",
    "Maple",
    "Orchid",
    "Quartz",
]
COMPANY_KINDS = [
    "Traders",
    "Logistics",
    "Analytics",
    "Foods",
    "Health",
    "Energy",
    "Robotics",
    "Studios",
    "Partners",
    "Systems",
    "Labs",
    "Outfitters",
    "Finance",
    "Media",
    "Pharma",
    "Builders",
    "Consulting",
    "Motors",
    "Textiles",
    "Software",
]
TLDS = ("com", "com", "com", "io", "co.uk", "de", "fr", "net")
JOB_TITLES = (
    "CEO",
    "CTO",
    "Head of Procurement",
    "Operations Manager",
    "IT Director",
    "Office Manager",
    "Purchasing Lead",
    "Finance Controller",
    "Product Manager",
    "Customer Success Lead",
    "Sales Director",
    "Engineer",
)
LEAD_TOPICS = (
    "Renewal {year} - {seats} seats",
    "Upgrade to Enterprise plan",
    "Pilot for the {team} team",
    "New office rollout ({seats} seats)",
    "Annual support contract",
    "Add-on: advanced reporting",
)
TEAMS = ("sales", "support", "finance", "logistics", "marketing", "operations")
TICKET_SUBJECTS = (
    "Cannot export invoices to PDF",
    "Login fails after password reset",
    "Sync with calendar stopped",
    "Invoice shows the wrong VAT rate",
    "Request: add a second admin",
    "Reports load slowly since Monday",
    "Mobile app crashes on start",
    "How do I import contacts from CSV?",
)
TASK_TITLES = (
    "Call back about pricing",
    "Send the updated quote",
    "Book a demo",
    "Follow up on the contract",
    "Check the ticket with support",
    "Prepare the renewal offer",
)
EMAIL_SUBJECTS = (
    "Question about our subscription",
    "Quote request",
    "Meeting next week?",
    "Re: Your proposal",
    "Invoice {number}",
    "Feedback on the trial",
)
EMAIL_BODIES = (
    "Hi Dana,\n\nCould you send us a quote for {seats} more seats?\n\nThanks,\n{first}",
    "Hello,\n\nWe would like to schedule a call next week to go over the proposal.\n\n"
    "Best regards,\n{first}",
    "Hi,\n\nThe invoice we received seems to use last year's prices. Could you check?\n\n{first}",
    "Dana,\n\nThe team liked the trial. A few questions about reporting before we decide.\n\n"
    "Cheers,\n{first}",
)
STAGE_PROBABILITY = {
    LeadStage.NEW: 10,
    LeadStage.QUALIFIED: 30,
    LeadStage.PROPOSITION: 60,
    LeadStage.WON: 100,
    LeadStage.LOST: 0,
}
TEMPLATES = (
    (
        "Thanks for reaching out",
        "Thanks for reaching out, {{ contact.first_name }}",
        "<p>Hi {{ contact.first_name }},</p><p>Thank you for your message. I will get back to "
        "you within one business day.</p><p>Best regards,<br>{{ user.name }}</p>",
    ),
    (
        "Meeting follow-up",
        "Following up on our meeting - {{ company.name }}",
        "<p>Hello {{ contact.name }},</p><p>Thanks for your time today. As discussed, I am "
        "sending a summary for the {{ company.name }} team.</p><p>{{ user.name }}</p>",
    ),
    (
        "Quote",
        "Your quote: {{ lead.title }}",
        "<p>Dear {{ contact.first_name }},</p><p>Please find our quote for "
        "<b>{{ lead.title }}</b>. It is valid for 30 days.</p><p>Kind regards,<br>"
        "{{ user.name }}</p>",
    ),
)


@dataclass(frozen=True)
class DemoResult:
    org_name: str
    user_email: str
    api_key: str
    created: bool


def _slug(text: str) -> str:
    return "-".join(text.lower().split())


def _text_html(text: str) -> str:
    paragraphs = text.split("\n\n")
    return "".join(
        "<p>" + "<br>".join(html.escape(line) for line in p.split("\n")) + "</p>"
        for p in paragraphs
    )


def _ensure_key(session: Session, user: User, key: str) -> None:
    if session.scalar(select(ApiKey.id).where(ApiKey.key_hash == hash_key(key))) is None:
        store_key(session, user, key, "demo")


def load_demo(
    session: Session, secret_key: str, *, contacts: int = 60, companies: int = 20
) -> DemoResult:
    key = derived_key(secret_key, "demo")
    org = session.scalar(select(Organization).where(Organization.name == ORG_NAME))
    if org is not None:
        user = session.scalar(select(User).where(User.email == USER_EMAIL))
        if user is not None:
            _ensure_key(session, user, key)
        return DemoResult(ORG_NAME, USER_EMAIL, key, created=False)

    org = Organization(name=ORG_NAME)
    user = User(organization=org, email=USER_EMAIL, name=USER_NAME, role=Role.ADMIN)
    session.add_all([org, user])
    session.flush()
    store_key(session, user, key, "demo")
    _Generator(session, org.id, user, random.Random(42)).run(contacts, companies)
    return DemoResult(ORG_NAME, USER_EMAIL, key, created=True)


class _Generator:
    def __init__(self, session: Session, org_id: int, user: User, rng: random.Random) -> None:
        self.session = session
        self.org_id = org_id
        self.user = user
        self.rng = rng
        self.today = dt.date.today()
        self.now = dt.datetime.now(dt.UTC)

    def _flush(self, objects: list[object]) -> None:
        for start in range(0, len(objects), BATCH):
            self.session.add_all(objects[start : start + BATCH])
            self.session.flush()

    def run(self, contact_count: int, company_count: int) -> None:
        companies = self._companies(company_count)
        contacts = self._contacts(contact_count, companies)
        leads = self._leads(contacts)
        tickets = self._tickets(contacts)
        self._tasks(contacts, leads, tickets)
        self._emails_and_notes(contacts)
        self._flush(
            [
                EmailTemplate(organization_id=self.org_id, name=n, subject=s, body_html=b)
                for n, s, b in TEMPLATES
            ]
        )

    def _companies(self, count: int) -> list[Company]:
        companies: list[Company] = []
        used: set[str] = set()
        names = [f"{w} {k}" for w in COMPANY_WORDS for k in COMPANY_KINDS]
        self.rng.shuffle(names)
        for n in range(count):
            name = names[n % len(names)] + (f" {n // len(names) + 1}" if n >= len(names) else "")
            domain = f"{_slug(name)}.{self.rng.choice(TLDS)}"
            while domain in used:
                domain = f"{_slug(name)}-{self.rng.randint(2, 999)}.com"
            domains = [domain]
            if self.rng.random() < 0.2:
                domains.append(f"{_slug(name).split('-')[0]}-{n}.io")
            used.update(domains)
            companies.append(
                Company(
                    organization_id=self.org_id,
                    name=name,
                    website=f"https://www.{domain}",
                    phone=f"+1 555 {self.rng.randint(100, 999)} {self.rng.randint(1000, 9999)}",
                    domains=[CompanyDomain(organization_id=self.org_id, domain=d) for d in domains],
                )
            )
        self._flush(companies)
        return companies

    def _contacts(self, count: int, companies: list[Company]) -> list[Contact]:
        contacts: list[Contact] = []
        used: set[str] = set()
        company_cycle = cycle(companies)
        for n in range(count):
            first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
            without_company = n % 20 == 19 or not companies
            company = None if without_company else next(company_cycle)
            domain = (
                self.rng.choice(("gmail.com", "outlook.com"))
                if company is None
                else company.domains[0].domain
            )
            address = f"{first}.{last}@{domain}".lower()
            if address in used:
                address = f"{first}.{last}{n}@{domain}".lower()
            emails = [address]
            if company is not None and self.rng.random() < 0.3:
                second = f"{first[0]}.{last}{n}@{domain}".lower()
                emails.append(second)
            used.update(emails)
            contacts.append(
                Contact(
                    organization_id=self.org_id,
                    name=f"{first} {last}",
                    job_title=self.rng.choice(JOB_TITLES) if company else None,
                    phone=f"+1 555 {self.rng.randint(100, 999)} {self.rng.randint(1000, 9999)}",
                    company=company,
                    emails=[ContactEmail(organization_id=self.org_id, email=e) for e in emails],
                )
            )
        self._flush(contacts)
        return contacts

    def _leads(self, contacts: list[Contact]) -> list[Lead]:
        leads: list[Lead] = []
        for contact in contacts[::2]:
            stage = self.rng.choice(list(LeadStage))
            title = self.rng.choice(LEAD_TOPICS).format(
                year=self.today.year + 1,
                seats=self.rng.choice((10, 25, 50, 100, 250)),
                team=self.rng.choice(TEAMS),
            )
            leads.append(
                Lead(
                    organization_id=self.org_id,
                    title=title,
                    description=f"{contact.name} asked about: {title.lower()}.",
                    stage=stage,
                    expected_revenue=Decimal(self.rng.randrange(2_000, 150_000, 500)),
                    probability=STAGE_PROBABILITY[stage],
                    contact=contact,
                    company=contact.company,
                    owner_id=self.user.id,
                )
            )
        self._flush(leads)
        return leads

    def _tickets(self, contacts: list[Contact]) -> list[Ticket]:
        tickets = [
            Ticket(
                organization_id=self.org_id,
                subject=self.rng.choice(TICKET_SUBJECTS),
                description=f"Reported by {contact.name}.",
                status=self.rng.choice(list(TicketStatus)),
                priority=self.rng.choice(list(TicketPriority)),
                contact=contact,
                company=contact.company,
                owner_id=self.user.id,
            )
            for contact in contacts[1::3]
        ]
        self._flush(tickets)
        return tickets

    def _tasks(self, contacts: list[Contact], leads: list[Lead], tickets: list[Ticket]) -> None:
        about: list[tuple[RecordType, int]] = (
            [(RecordType.CONTACT, c.id) for c in contacts[::8]]
            + [(RecordType.LEAD, lead.id) for lead in leads[::4]]
            + [(RecordType.TICKET, t.id) for t in tickets[::4]]
        )
        tasks = [
            Task(
                organization_id=self.org_id,
                title=self.rng.choice(TASK_TITLES),
                due_date=self.today + dt.timedelta(days=self.rng.randint(-10, 30)),
                done=self.rng.random() < 0.25,
                assignee_id=self.user.id,
                record_type=record_type,
                record_id=record_id,
            )
            for record_type, record_id in about
        ]
        self._flush(tasks)

    def _emails_and_notes(self, contacts: list[Contact]) -> None:
        activities: list[Activity] = []
        number = 0
        for index, contact in enumerate(contacts):
            if number >= MAX_EMAILS:
                break
            count = self.rng.randint(1, 3) if index < 100 else int(self.rng.random() < 0.05)
            address = contact.emails[0].email
            first = contact.name.split()[0]
            for _ in range(count):
                number += 1
                subject = self.rng.choice(EMAIL_SUBJECTS).format(number=10_000 + number)
                text = self.rng.choice(EMAIL_BODIES).format(
                    seats=self.rng.choice((5, 10, 20)), first=first
                )
                links = [RecordType.CONTACT, contact.id], [RecordType.COMPANY, contact.company_id]
                activities.append(
                    Activity(
                        organization_id=self.org_id,
                        kind=ActivityKind.EMAIL,
                        author_id=self.user.id,
                        occurred_at=self.now - dt.timedelta(minutes=self.rng.randint(60, 86_400)),
                        subject=subject,
                        message_id=f"<demo-{number}@connector.example>",
                        from_address=f"{contact.name} <{address}>",
                        to_addresses=[f"{USER_NAME} <{USER_EMAIL}>"],
                        cc_addresses=[],
                        body_text=text,
                        body_html=_text_html(text),
                        links=[
                            ActivityLink(organization_id=self.org_id, record_type=t, record_id=i)
                            for t, i in links
                            if i is not None and (t is RecordType.CONTACT or number % 2 == 0)
                        ],
                    )
                )
            if index % 10 == 0:
                text = f"{first} prefers a call in the morning. Decision expected this quarter."
                activities.append(
                    Activity(
                        organization_id=self.org_id,
                        kind=ActivityKind.NOTE,
                        author_id=self.user.id,
                        occurred_at=self.now - dt.timedelta(days=self.rng.randint(1, 30)),
                        body_text=text,
                        body_html=_text_html(text),
                        links=[
                            ActivityLink(
                                organization_id=self.org_id,
                                record_type=RecordType.CONTACT,
                                record_id=contact.id,
                            )
                        ],
                    )
                )
        self._flush(activities)

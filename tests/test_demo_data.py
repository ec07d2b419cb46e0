"""The demo organization: counts, unique addresses and domains, idempotence, the key."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

import connector.models  # noqa: F401  (registers every table on Base.metadata)
from connector.activities.models import Activity, ActivityKind, ActivityLink
from connector.db import Base
from connector.demo.data import DemoResult, load_demo
from connector.email_templates.models import EmailTemplate
from connector.orgs.models import ApiKey, Organization, Role, User
from connector.orgs.service import authenticate, derived_key, hash_key
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
)

SECRET = "demo-test-secret"
MODELS = (
    Organization,
    User,
    ApiKey,
    Company,
    CompanyDomain,
    Contact,
    ContactEmail,
    Lead,
    Ticket,
    Task,
    Activity,
    ActivityLink,
    EmailTemplate,
)
ORG_OWNED = (
    Company,
    CompanyDomain,
    Contact,
    ContactEmail,
    Lead,
    Ticket,
    Task,
    Activity,
    ActivityLink,
    EmailTemplate,
)


@pytest.fixture
def session() -> Iterator[Session]:
    engine = sa.create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        yield session
    engine.dispose()


@pytest.fixture
def demo(session: Session) -> DemoResult:
    result = load_demo(session, SECRET)
    session.commit()
    return result


def counts(session: Session) -> dict[str, int]:
    return {
        model.__name__: session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in MODELS
    }


def test_default_load_has_every_kind_of_record(session: Session, demo: DemoResult) -> None:
    assert demo == DemoResult(
        "Demo Company", "demo@connector.example", derived_key(SECRET, "demo"), created=True
    )
    numbers = counts(session)
    assert numbers["Contact"] >= 50
    assert numbers["Company"] >= 20
    assert numbers["EmailTemplate"] == 3
    for name in ("Lead", "Ticket", "Task", "Activity", "ActivityLink"):
        assert numbers[name] > 0, name
    emails = session.scalar(sa.select(sa.func.count()).where(Activity.kind == ActivityKind.EMAIL))
    notes = session.scalar(sa.select(sa.func.count()).where(Activity.kind == ActivityKind.NOTE))
    assert emails >= 60 and notes > 0

    user = session.scalar(sa.select(User))
    assert (user.email, user.name, user.role) == ("demo@connector.example", "Dana Demo", Role.ADMIN)
    assert user.organization.name == "Demo Company"


def test_every_row_belongs_to_the_demo_org(session: Session, demo: DemoResult) -> None:
    org_id = session.scalar(sa.select(Organization.id).where(Organization.name == demo.org_name))
    for model in ORG_OWNED:
        others = session.scalar(
            sa.select(sa.func.count()).select_from(model).where(model.organization_id != org_id)
        )
        assert others == 0, model.__name__


def test_addresses_and_domains_are_unique_and_lower_case(
    session: Session, demo: DemoResult
) -> None:
    for column in (ContactEmail.email, CompanyDomain.domain):
        values = session.scalars(sa.select(column)).all()
        assert values
        assert len(values) == len(set(values)), column
        assert all(value == value.lower() and " " not in value for value in values)
    addresses = session.scalars(sa.select(ContactEmail.email)).all()
    assert all(address.count("@") == 1 for address in addresses)
    free_mail = [a for a in addresses if a.endswith(("@gmail.com", "@outlook.com"))]
    assert free_mail

    # Company contacts write from their company's domain; free-mail ones have no company.
    by_company: dict[int, set[str]] = {}
    for company_id, domain in session.execute(
        sa.select(CompanyDomain.company_id, CompanyDomain.domain)
    ):
        by_company.setdefault(company_id, set()).add(domain)
    assert by_company
    for contact in session.scalars(sa.select(Contact)):
        address_domains = {e.email.rpartition("@")[2] for e in contact.emails}
        assert contact.emails
        if contact.company_id is None:
            assert address_domains <= {"gmail.com", "outlook.com"}
        else:
            assert address_domains <= by_company[contact.company_id]
    for company in session.scalars(sa.select(Company)):
        assert company.website == f"https://www.{company.domains[0].domain}"


def test_every_company_has_a_contact(session: Session, demo: DemoResult) -> None:
    empty = session.scalar(
        sa.select(sa.func.count())
        .select_from(Company)
        .where(~sa.exists().where(Contact.company_id == Company.id))
    )
    assert empty == 0


def test_records_are_consistent(session: Session, demo: DemoResult) -> None:
    expected = {LeadStage.WON: {100}, LeadStage.LOST: {0}}
    for lead in session.scalars(sa.select(Lead)):
        assert lead.contact is not None and lead.owner_id is not None
        assert lead.company_id == lead.contact.company_id
        assert lead.probability in expected.get(lead.stage, range(1, 100))
        assert lead.expected_revenue > 0
    assert len(set(session.scalars(sa.select(Lead.stage)))) == len(LeadStage)

    today = dt.datetime.now(dt.UTC).date()
    tables = {RecordType.CONTACT: Contact, RecordType.LEAD: Lead, RecordType.TICKET: Ticket}
    tasks = session.scalars(sa.select(Task)).all()
    for task in tasks:
        assert -11 <= (task.due_date - today).days <= 31
        assert session.get(tables[task.record_type], task.record_id) is not None
    assert any(task.done for task in tasks) and not all(task.done for task in tasks)

    message_ids = session.scalars(
        sa.select(Activity.message_id).where(Activity.kind == ActivityKind.EMAIL)
    ).all()
    assert all(m.startswith("<demo-") and m.endswith("@connector.example>") for m in message_ids)
    assert len(message_ids) == len(set(message_ids))
    for activity in session.scalars(sa.select(Activity)):
        assert (activity.kind == ActivityKind.EMAIL) == (activity.message_id is not None)
        assert any(link.record_type == RecordType.CONTACT for link in activity.links)
        assert "<script" not in activity.body_html and activity.body_html.startswith("<p>")
    for link in session.scalars(sa.select(ActivityLink)):
        table = {**tables, RecordType.COMPANY: Company}[link.record_type]
        assert session.get(table, link.record_id) is not None

    templates = {t.name: t for t in session.scalars(sa.select(EmailTemplate))}
    assert set(templates) == {"Thanks for reaching out", "Meeting follow-up", "Quote"}
    assert "{{ lead.title }}" in templates["Quote"].subject + templates["Quote"].body_html


def test_second_load_changes_nothing_and_gives_the_same_key(
    session: Session, demo: DemoResult
) -> None:
    before = counts(session)
    again = load_demo(session, SECRET)
    session.flush()
    assert again == DemoResult(demo.org_name, demo.user_email, demo.api_key, created=False)
    assert counts(session) == before
    assert not session.new and not session.dirty


def test_second_load_restores_a_missing_key(session: Session, demo: DemoResult) -> None:
    session.execute(sa.delete(ApiKey))
    session.commit()
    again = load_demo(session, SECRET)
    session.commit()
    assert not again.created and again.api_key == demo.api_key
    assert session.scalar(sa.select(ApiKey.key_hash)) == hash_key(demo.api_key)


def test_the_key_authenticates_the_demo_user(session: Session, demo: DemoResult) -> None:
    user = authenticate(session, demo.api_key)
    assert user is not None and user.email == demo.user_email
    assert authenticate(session, derived_key("another-secret", "demo")) is None


def test_loads_are_deterministic() -> None:
    def snapshot() -> tuple[list[str], list[str], list[str]]:
        engine = sa.create_engine("sqlite://")
        Base.metadata.create_all(engine)
        with Session(engine) as session:
            load_demo(session, SECRET, contacts=80, companies=25)
            return (
                session.scalars(sa.select(Company.name).order_by(Company.id)).all(),
                session.scalars(sa.select(ContactEmail.email).order_by(ContactEmail.id)).all(),
                session.scalars(sa.select(Lead.title).order_by(Lead.id)).all(),
            )

    assert snapshot() == snapshot()


def test_a_larger_load_is_quick_and_bounded(session: Session) -> None:
    started = time.perf_counter()
    load_demo(session, SECRET, contacts=2000, companies=200)
    session.commit()
    assert time.perf_counter() - started < 10
    numbers = counts(session)
    assert numbers["Contact"] == 2000 and numbers["Company"] == 200
    assert numbers["Lead"] >= 900 and numbers["Ticket"] >= 600 and numbers["Task"] >= 450
    emails = session.scalar(sa.select(sa.func.count()).where(Activity.kind == ActivityKind.EMAIL))
    assert 100 <= emails <= 400
    addresses = session.scalars(sa.select(ContactEmail.email)).all()
    assert len(addresses) == len(set(addresses))


def test_it_prints_nothing(session: Session, capsys: pytest.CaptureFixture[str]) -> None:
    load_demo(session, SECRET)
    load_demo(session, SECRET)
    assert capsys.readouterr() == ("", "")

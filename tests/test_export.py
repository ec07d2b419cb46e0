"""`connector export`: CSV that imports again unchanged, JSON lines, every kind of record."""

from __future__ import annotations

import csv
import io
import json

import pytest
import sqlalchemy as sa

from connector.db import session_scope
from connector.demo.data import ORG_NAME
from connector.models import Activity, Company, Contact, Lead, Ticket
from tests.test_import import counts, table_count

MODELS = {"contacts": Contact, "companies": Company, "leads": Lead, "tickets": Ticket}


@pytest.fixture
def demo(runner) -> str:
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    return ORG_NAME


def export(runner, kind: str, *extra: str, org: str = ORG_NAME):
    return runner.invoke(args=["export", kind, "--org", org, *extra])


def live_count(app, model) -> int:
    with session_scope(app) as session:
        return session.scalar(
            sa.select(sa.func.count()).select_from(model).where(model.archived_at.is_(None))
        )


@pytest.mark.parametrize("kind", ["contacts", "companies", "leads"])
def test_a_csv_export_imports_again_with_nothing_created(app, runner, demo, tmp_path, kind) -> None:
    path = tmp_path / f"{kind}.csv"
    result = export(runner, kind, "--output", str(path))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert len(rows) == live_count(app, MODELS[kind]) > 0
    before = table_count(app, MODELS[kind])
    again = runner.invoke(args=["import", kind, str(path), "--org", ORG_NAME])
    assert again.exit_code == 0, again.output
    created, updated, unchanged, rejected = counts(again.output)
    assert (created, updated, rejected) == (0, 0, 0), again.output
    assert unchanged == len(rows)
    assert table_count(app, MODELS[kind]) == before
    assert not (tmp_path / f"{kind}.csv.rejected.csv").exists()


def test_contacts_export_into_a_new_organization_recreates_them(
    app, runner, demo, tmp_path
) -> None:
    path = tmp_path / "contacts.csv"
    assert export(runner, "contacts", "--output", str(path)).exit_code == 0
    made = runner.invoke(
        args=["users", "create", "--org", "Fresh", "--email", "f@fresh.test", "--name", "F"]
    )
    assert made.exit_code == 0, made.output
    exported = live_count(app, Contact)
    result = runner.invoke(args=["import", "contacts", str(path), "--org", "Fresh"])
    assert counts(result.output) == (exported, 0, 0, 0), result.output
    assert live_count(app, Contact) == 2 * exported
    header = next(csv.reader(path.open(encoding="utf-8")))
    assert header[:2] == ["Name", "Email"] and "Company" in header


@pytest.mark.parametrize("kind", ["contacts", "companies", "leads", "tickets", "activities"])
def test_jsonl_is_one_json_object_a_line(app, runner, demo, kind) -> None:
    result = export(runner, kind, "--format", "jsonl")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line]
    records = [json.loads(line) for line in lines]
    assert records and all(isinstance(r, dict) and "id" in r for r in records)
    if kind in MODELS:
        assert len(records) == live_count(app, MODELS[kind])
    if kind == "contacts":
        assert all(r["emails"] for r in records)


def test_activities_export_names_their_records(app, runner, demo, tmp_path) -> None:
    result = export(runner, "activities")  # CSV on standard output
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == table_count(app, Activity) > 0
    assert all(r["Kind"] in ("email", "note") for r in rows)
    assert any(r["Records"].startswith(("contact:", "company:", "lead:", "ticket:")) for r in rows)
    emails = [r for r in rows if r["Kind"] == "email"]
    assert emails and all(r["From"] and r["Date"] for r in emails)


def test_archived_records_stay_out(app, runner, demo, tmp_path) -> None:
    with session_scope(app) as session:
        contact = session.scalars(sa.select(Contact).order_by(Contact.id)).first()
        contact.archived_at = sa.func.now()
        address = contact.emails[0].email
    result = export(runner, "contacts")
    assert address not in result.stdout


def test_bad_export_arguments_fail_clearly(app, runner, demo, tmp_path) -> None:
    unknown = export(runner, "contacts", org="Nobody Inc")
    assert unknown.exit_code == 1 and "no organization" in unknown.output
    wrong = export(runner, "contacts", "--format", "xml")
    assert wrong.exit_code == 2
    folder = tmp_path / "missing" / "out.csv"
    unwritable = export(runner, "contacts", "--output", str(folder))
    assert unwritable.exit_code == 1 and "Cannot write" in unwritable.output
    for result in (unknown, wrong, unwritable):
        assert "Traceback" not in result.output


def test_export_of_an_empty_organization_is_a_header(app, runner, caller, tmp_path) -> None:
    result = export(runner, "contacts", org="Acme")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["Name,Email,Phone,Job Title,Company,Owner,Created"]

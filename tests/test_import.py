"""`connector import`: other systems' CSV exports and vCards, matched, never duplicated."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from connector.db import session_scope
from connector.models import Company, Contact, ContactEmail, Lead, RecordChange

SAMPLES = Path(__file__).parent / "import_samples"
SUMMARY = re.compile(r"created (\d+), updated (\d+), unchanged (\d+), rejected (\d+)")


def counts(output: str) -> tuple[int, int, int, int]:
    found = SUMMARY.search(output)
    assert found, output
    created, updated, unchanged, rejected = (int(n) for n in found.groups())
    return created, updated, unchanged, rejected


def run_import(runner, kind: str, path: Path, *extra: str, org: str = "Acme"):
    return runner.invoke(args=["import", kind, str(path), "--org", org, *extra])


def sample(tmp_path: Path, name: str) -> Path:
    """A copy of a sample, so that its rejects file lands in the test's own folder."""
    target = tmp_path / name
    shutil.copy(SAMPLES / name, target)
    return target


def contact_of(app, address: str) -> Contact | None:
    with session_scope(app) as session:
        contact = session.scalar(
            sa.select(Contact)
            .join(ContactEmail)
            .where(ContactEmail.email == address.lower())
            .options(sa.orm.selectinload(Contact.emails), sa.orm.joinedload(Contact.company))
        )
        if contact is not None:
            session.expunge(contact)
        return contact


def table_count(app, model) -> int:
    with session_scope(app) as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model))


def outlook_file(path: Path, people: int) -> dict[int, str]:
    """An Outlook export (BOM, every field quoted, CRLF) of `people` rows with bad rows
    mixed in; returns the bad rows' lines and what is wrong with them."""
    header = [
        "Title",
        "First Name",
        "Middle Name",
        "Last Name",
        "Company",
        "Job Title",
        "Business Phone",
        "E-mail Address",
        "E-mail Type",
        "E-mail 2 Address",
        "Notes",
    ]
    bad: dict[int, str] = {}
    lines = [header]
    line = 1
    for n in range(people):
        line += 1
        company = f"Firm {n % 40}"
        row = [
            "Mr.",
            f"Person{n}",
            "",
            "Ölçek",
            company,
            "Buyer",
            f"+1 555 {n:04d}",
            f"person{n}@firm{n % 40}.test",
            "SMTP",
            f"p{n}@gmail.com" if n % 3 == 0 else "",
            'said: "call me", later' if n % 7 == 0 else "",
        ]
        lines.append(row)
        if n % 7 == 0:
            pass  # quoted quotes and a comma; one line
        if n % 250 == 17:
            line += 1
            bad[line] = "is not an email address"
            lines.append(["", "Broken", "", "Row", "", "", "", "not-an-address", "SMTP", "", ""])
        if n % 250 == 101:
            line += 1
            bad[line] = "no email address"
            lines.append(["", "Nobody", "", "Here", "Nowhere", "", "", "", "", "", ""])
        if n % 500 == 203:
            line += 1
            bad[line] = "the same person as line"
            lines.append(
                ["", "Twin", "", "Again", "", "", "", f"PERSON{n}@firm{n % 40}.test", "", "", ""]
            )
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        for row in lines:
            writer.writerow(row)
    return bad


# The issue's own measure: an Outlook export of 20,000 people (a few seconds per backend).
PEOPLE = 20_000


def test_an_outlook_export_with_bad_rows_imports_once(app, runner, caller, tmp_path) -> None:
    path = tmp_path / "outlook.csv"
    bad = outlook_file(path, PEOPLE)
    result = run_import(runner, "contacts", path)
    assert result.exit_code == 0, result.output
    assert counts(result.output) == (PEOPLE, 0, 0, len(bad))
    assert "40 new companies created" in result.output
    assert "Traceback" not in result.output

    rejects = list(
        csv.DictReader((tmp_path / "outlook.csv.rejected.csv").open(encoding="utf-8-sig"))
    )
    assert {int(r["line"]): r["reason"] for r in rejects}.keys() == bad.keys()
    for row in rejects:
        assert bad[int(row["line"])] in row["reason"]
        assert "E-mail Address" in row  # the original columns, then line and reason

    # The lookup finds the imported people, with their company.
    found = caller.get("/api/v1/lookup?email=person1234@firm34.test").json["results"][0]
    assert found["contact"]["name"] == "Person1234 Ölçek"
    assert found["company"]["name"] == "Firm 34"
    assert caller.get("/api/v1/lookup?email=P3@GMAIL.COM").json["results"][0]["contact"]
    ana = contact_of(app, "person3@firm3.test")
    assert [e.email for e in ana.emails] == ["person3@firm3.test", "p3@gmail.com"]
    assert (ana.job_title, ana.phone) == ("Buyer", "+1 555 0003")  # not Outlook's "Mr."

    # Again: nothing created, nothing updated.
    before = table_count(app, Contact), table_count(app, Company), table_count(app, RecordChange)
    again = run_import(runner, "contacts", path)
    assert again.exit_code == 0, again.output
    assert counts(again.output) == (0, 0, PEOPLE, len(bad))
    assert "new companies" not in again.output
    after = table_count(app, Contact), table_count(app, Company), table_count(app, RecordChange)
    assert after == before


def test_each_system_s_export_maps_by_its_headers(app, runner, caller, tmp_path) -> None:
    for name in ("outlook.csv", "google.csv", "hubspot.csv", "salesforce.csv", "odoo.csv"):
        result = run_import(runner, "contacts", sample(tmp_path, name))
        assert result.exit_code == 0, result.output
        assert counts(result.output)[3] == 0, (name, result.output)
    ana = contact_of(app, "ana@limalabs.test")
    assert (ana.name, ana.job_title, ana.phone, ana.company.name) == (
        "Ana Lima",
        "Founder",
        "+351 21 000 0001",
        "Lima Labs",
    )
    assert [e.email for e in ana.emails] == ["ana@limalabs.test", "ana.lima@gmail.com"]
    carla = contact_of(app, "cdias@yahoo.com")  # Google's " ::: " between two addresses
    assert carla.name == "Carla Dias" and carla.job_title == "CEO"
    assert carla.company.name == "Dias & Filhos"
    assert len(carla.emails) == 3
    dan = contact_of(app, "devans@gmail.com")  # HubSpot's additional addresses
    assert (dan.name, dan.phone, dan.company.name) == ("Dan Evans", "555-0104", "Evans Freight")
    eva = contact_of(app, "eva@fischer.test")
    assert (eva.job_title, eva.company.name) == ("Buyer", "Fischer GmbH")  # Salesforce's "Title"
    farid = contact_of(app, "farid@haddad.test")
    assert (farid.name, farid.job_title, farid.company.name) == (
        "Farid Haddad",
        "Director",
        "Haddad SARL",
    )
    # A company from a company domain, never from a free-mail one.
    with session_scope(app) as session:
        domains = set(
            session.scalars(sa.select(sa.text("domain")).select_from(sa.table("company_domains")))
        )
    assert "limalabs.test" in domains and "gmail.com" not in domains and "yahoo.com" not in domains


def test_a_second_address_finds_the_same_contact(app, runner, caller, tmp_path) -> None:
    assert counts(run_import(runner, "contacts", sample(tmp_path, "google.csv")).output)[0] == 1
    second = tmp_path / "later.csv"
    second.write_text(
        "Name,E-mail 1 - Value,E-mail 2 - Value,Phone 1 - Value\n"
        "Carla Dias,carla.new@dias.test,CARLA.DIAS@gmail.com,+55 11 9999 9999\n"
    )
    result = run_import(runner, "contacts", second)
    assert counts(result.output) == (0, 1, 0, 0), result.output
    carla = contact_of(app, "carla.new@dias.test")
    assert carla.phone == "+55 11 9999 9999"
    assert [e.email for e in carla.emails][:3] == [
        "carla@dias.test",
        "carla.dias@gmail.com",
        "cdias@yahoo.com",
    ]
    assert table_count(app, Contact) == 1
    # The change went through the API's rules: it is in the contact's history.
    with session_scope(app) as session:
        fields = set(
            session.scalars(sa.select(RecordChange.field).where(RecordChange.record_id == carla.id))
        )
    assert {"phone", "emails"} <= fields
    assert counts(run_import(runner, "contacts", second).output) == (0, 0, 1, 0)


@pytest.mark.parametrize(
    "name, created, rejected", [("contacts3.vcf", 2, 0), ("contacts4.vcf", 1, 1)]
)
def test_vcards_import(app, runner, caller, tmp_path, name, created, rejected) -> None:
    path = sample(tmp_path, name)
    result = run_import(runner, "contacts", path)
    assert result.exit_code == 0, result.output
    assert counts(result.output) == (created, 0, 0, rejected)
    assert "vCard" in result.output
    if name == "contacts3.vcf":
        gil = contact_of(app, "gil.gomes@gmail.com")  # a folded line
        assert (gil.name, gil.job_title, gil.phone) == (
            "Gil Gomes",
            "Fleet Manager",
            "+351 22 000 0007",
        )
        assert gil.company.name == "Gomes Transportes"
        assert [e.email for e in gil.emails] == ["gil@gomes.test", "gil.gomes@gmail.com"]
    else:
        ivo = contact_of(app, "ivo@ilic.test")
        assert (ivo.job_title, ivo.phone, ivo.company.name) == (
            "Owner",
            "+385-1-000-0008",
            "Ilic d.o.o.",
        )
        rejects = (tmp_path / "contacts4.vcf.rejected.csv").read_text(encoding="utf-8-sig")
        assert "No Address" in rejects and "no email address" in rejects
    assert counts(run_import(runner, "contacts", path).output) == (0, 0, created, rejected)


def test_cp1252_semicolons_and_tabs(app, runner, caller, tmp_path) -> None:
    semicolons = tmp_path / "excel.csv"
    semicolons.write_bytes(
        (
            "Nachname;Vorname;E-Mail-Adresse;Firma\r\n"
            "Müller;Jürgen;jm@mueller.test;Müller & Söhne, KG\r\n"
        ).encode("cp1252")
    )
    result = run_import(runner, "contacts", semicolons, "--map", "E-Mail-Adresse=emails")
    assert result.exit_code == 0, result.output
    assert counts(result.output) == (1, 0, 0, 0)
    assert "cp1252" in result.output
    jurgen = contact_of(app, "jm@mueller.test")
    assert (jurgen.name, jurgen.company.name) == ("Jürgen Müller", "Müller & Söhne, KG")

    tabs = tmp_path / "tabs.tsv"
    tabs.write_text("Email\tName\tPhone\nzoe@zeta.test\tZoë Zeta\t+1 555 0199\n", encoding="utf-8")
    result = run_import(runner, "contacts", tabs)
    assert counts(result.output) == (1, 0, 0, 0), result.output
    assert contact_of(app, "zoe@zeta.test").phone == "+1 555 0199"


def test_map_names_columns_the_importer_does_not_know(app, runner, caller, tmp_path) -> None:
    path = tmp_path / "custom.csv"
    path.write_text("Who,Where to write,Rank\nYan Yu,yan@yu.test,Chief\n")
    refused = run_import(runner, "contacts", path)
    assert (
        refused.exit_code != 0 and "--map" in refused.output and "Traceback" not in refused.output
    )
    result = run_import(
        runner,
        "contacts",
        path,
        "--map",
        "Who=name",
        "--map",
        "Where to write=emails",
        "--map",
        "Rank=job_title",
    )
    assert counts(result.output) == (1, 0, 0, 0), result.output
    yan = contact_of(app, "yan@yu.test")
    assert (yan.name, yan.job_title) == ("Yan Yu", "Chief")
    bad = run_import(runner, "contacts", path, "--map", "Who=nickname")
    assert bad.exit_code == 2 and "no field 'nickname'" in bad.output


def test_dry_run_writes_nothing(app, runner, caller, tmp_path) -> None:
    path = tmp_path / "outlook.csv"
    bad = outlook_file(path, 300)
    result = run_import(runner, "contacts", path, "--dry-run")
    assert result.exit_code == 0, result.output
    assert counts(result.output) == (300, 0, 0, len(bad))
    assert "dry run" in result.output
    assert table_count(app, Contact) == 0 and table_count(app, Company) == 0
    assert counts(run_import(runner, "contacts", path).output) == (300, 0, 0, len(bad))


def test_companies_by_domain_and_name(app, runner, caller, tmp_path) -> None:
    path = sample(tmp_path, "hubspot_companies.csv")
    result = run_import(runner, "companies", path)
    assert result.exit_code == 0, result.output
    assert counts(result.output) == (2, 0, 0, 1)
    with session_scope(app) as session:
        kilo = session.scalar(sa.select(Company).where(Company.name == "Kilo Partners"))
        assert [d.domain for d in kilo.domains] == ["kilo-partners.test"]  # from its website
        assert kilo.phone == "555-0111"
    assert counts(run_import(runner, "companies", path).output) == (0, 0, 2, 1)
    renamed = tmp_path / "renamed.csv"
    renamed.write_text("Account Name,Website,Phone\nJADE SYSTEMS,,555-0000\n")
    assert counts(run_import(runner, "companies", renamed).output) == (0, 1, 0, 0)
    assert table_count(app, Company) == 2


def test_leads_by_their_id_column_or_by_title_and_contact(app, runner, caller, tmp_path) -> None:
    run_import(runner, "contacts", sample(tmp_path, "outlook.csv"))
    with_ids = sample(tmp_path, "salesforce_opportunities.csv")
    result = run_import(runner, "leads", with_ids)
    assert result.exit_code == 0, result.output
    assert counts(result.output) == (2, 0, 0, 1)
    rejects = (tmp_path / "salesforce_opportunities.csv.rejected.csv").read_text(
        encoding="utf-8-sig"
    )
    assert "unknown stage 'Somewhere odd'" in rejects and ",4," in rejects
    with session_scope(app) as session:
        fleet = session.scalar(sa.select(Lead).where(Lead.external_id == "006A000001"))
        assert (fleet.title, fleet.stage, str(fleet.expected_revenue)) == (
            "Fleet renewal",
            "new",
            "12500.00",
        )
        assert fleet.contact.name == "Ana Lima" and fleet.company.name == "Lima Labs"
        won = session.scalar(sa.select(Lead).where(Lead.external_id == "006A000002"))
        assert (won.stage, won.probability) == ("won", 100)
    assert counts(run_import(runner, "leads", with_ids).output) == (0, 0, 2, 1)
    # The same id with a new amount updates that lead.
    changed = tmp_path / "changed.csv"
    changed.write_text("Opportunity ID,Opportunity Name,Amount\n006A000001,Fleet renewal,13000\n")
    assert counts(run_import(runner, "leads", changed).output) == (0, 1, 0, 0)

    without_ids = sample(tmp_path, "odoo_leads.csv")
    result = run_import(runner, "leads", without_ids)
    assert counts(result.output) == (2, 0, 0, 0), result.output
    with session_scope(app) as session:
        redesign = session.scalar(sa.select(Lead).where(Lead.title == "Website redesign"))
        assert str(redesign.expected_revenue) == "8000.00"
        assert redesign.close_date.isoformat() == "2025-07-31" and redesign.stage == "qualified"
        assert redesign.external_id is None and redesign.contact.name == "Ana Lima"
    assert counts(run_import(runner, "leads", without_ids).output) == (0, 0, 2, 0)
    assert table_count(app, Lead) == 4


def test_unreadable_files_and_all_rejected_fail_without_a_traceback(
    app, runner, caller, tmp_path
) -> None:
    missing = run_import(runner, "contacts", tmp_path / "nope.csv")
    assert missing.exit_code == 1 and "Cannot read" in missing.output
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert run_import(runner, "contacts", empty).exit_code == 1
    binary = tmp_path / "photo.csv"
    binary.write_bytes(b"\x89PNG\x00\x00\x00")
    result = run_import(runner, "contacts", binary)
    assert result.exit_code == 1 and "not a text file" in result.output
    all_bad = tmp_path / "bad.csv"
    all_bad.write_text("Email,Name\nnope,A\nalso nope,B\n")
    result = run_import(runner, "contacts", all_bad)
    assert result.exit_code == 1 and counts(result.output) == (0, 0, 0, 2)
    assert "No row could be imported" in result.output
    unknown = run_import(runner, "contacts", all_bad, org="Nobody Inc")
    assert unknown.exit_code == 1 and "no organization" in unknown.output
    for result in (missing, unknown):
        assert "Traceback" not in result.output


def test_imports_and_exports_are_in_the_audit_log(app, runner, caller, tmp_path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("Email,First Name,Last Name\nmia@initech.test,Mia,Wong\n")
    assert run_import(runner, "contacts", path).exit_code == 0
    exported = runner.invoke(args=["export", "contacts", "--org", "Acme", "--format", "jsonl"])
    assert exported.exit_code == 0, exported.output
    log = runner.invoke(args=["audit", "--org", "Acme"])
    assert log.exit_code == 0, log.output
    assert "records.imported" in log.output and "records.exported" in log.output
    assert "people.csv" in log.output

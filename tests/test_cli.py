"""The connector's commands: init-db, demo, users, keys."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from connector.app import create_app
from connector.db import session_scope
from connector.models import Activity, Company, Contact, EmailTemplate, Lead, Task, Ticket
from connector.orgs import service as orgs
from connector.orgs.models import SignInDomain
from tests.conftest import base_config


def test_init_db_is_repeatable(runner) -> None:
    for _ in range(2):
        result = runner.invoke(args=["init-db"])
        assert result.exit_code == 0, result.output
        assert "up to date" in result.output


def table_counts(app) -> dict[str, int]:
    with session_scope(app) as session:
        return {
            model.__name__: session.scalar(sa.select(sa.func.count()).select_from(model))
            for model in (Company, Contact, Lead, Ticket, Task, Activity, EmailTemplate)
        }


def test_demo_loads_once_and_prints_a_working_key(app, runner, client) -> None:
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    key = re.search(r"Demo API key: (\S+)", first.output).group(1)
    counts = table_counts(app)
    assert counts["Contact"] >= 50 and counts["Company"] >= 20
    assert counts["EmailTemplate"] == 3
    assert min(counts.values()) > 0
    second = runner.invoke(args=["demo"])
    assert second.exit_code == 0
    assert "unchanged" in second.output
    assert f"Demo API key: {key}" in second.output
    assert table_counts(app) == counts
    headers = {"Authorization": f"Bearer {key}"}
    with session_scope(app) as session:
        address = (
            session.scalars(sa.select(Contact).where(Contact.company_id.is_not(None)))
            .first()
            .emails[0]
            .email
        )
    result = client.get(f"/api/v1/lookup?email={address}", headers=headers).json["results"][0]
    assert result["contact"] and result["company"]


def test_users_create_and_keys_issue(runner, client) -> None:
    created = runner.invoke(
        args=[
            "users",
            "create",
            "--org",
            "Initech",
            "--email",
            "Peter@Initech.test",
            "--name",
            "Peter",
            "--admin",
        ]
    )
    assert created.exit_code == 0, created.output
    assert "admin peter@initech.test" in created.output
    again = runner.invoke(
        args=[
            "users",
            "create",
            "--org",
            "Initech",
            "--email",
            "peter@initech.test",
            "--name",
            "Peter",
        ]
    )
    assert again.exit_code != 0 and "exists already" in again.output
    bad = runner.invoke(args=["users", "create", "--org", "X", "--email", "nope", "--name", "N"])
    assert bad.exit_code != 0
    issued = runner.invoke(args=["keys", "issue", "--email", "peter@initech.test"])
    assert issued.exit_code == 0
    key = issued.output.strip()
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})
    assert me.status_code == 200 and me.json["role"] == "admin"
    missing = runner.invoke(args=["keys", "issue", "--email", "ghost@initech.test"])
    assert missing.exit_code != 0 and "no user" in missing.output


def test_several_workers_need_redis() -> None:
    import click
    import pytest

    from connector.cli import worker_count

    assert worker_count(None, None) == 1
    assert worker_count(None, 1) == 1
    with pytest.raises(click.UsageError, match="CONNECTOR_REDIS_URL"):
        worker_count(None, 4)
    assert worker_count("redis://127.0.0.1:6379/0", 4) == 4
    assert worker_count("redis://127.0.0.1:6379/0", None) >= 3


ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "manifests" / "examples"
EXAMPLE_URL = "https://connector.example.com"


def test_the_committed_manifest_examples_are_what_the_commands_write(
    app, runner, tmp_path: Path
) -> None:
    app.config["MS_CLIENT_ID"] = ""
    out = tmp_path / "out"
    gmail = runner.invoke(
        args=[
            "manifest",
            "gmail",
            "--base-url",
            EXAMPLE_URL,
            "--output",
            str(out / "gmail" / "deployment.json"),
        ]
    )
    assert gmail.exit_code == 0, gmail.output
    outlook = runner.invoke(
        args=[
            "manifest",
            "outlook",
            "--base-url",
            EXAMPLE_URL,
            "--output-dir",
            str(out / "outlook"),
        ]
    )
    assert outlook.exit_code == 0, outlook.output
    written = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    committed = sorted(p.relative_to(EXAMPLES) for p in EXAMPLES.rglob("*") if p.is_file())
    assert written == committed
    for name in written:
        assert (out / name).read_bytes() == (EXAMPLES / name).read_bytes(), name


def test_what_an_admin_writes_is_ignored_by_git(runner, tmp_path: Path, monkeypatch) -> None:
    # The commands' default paths, relative to where they run, as the README shows them.
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(out)
    assert runner.invoke(args=["manifest", "gmail", "--base-url", EXAMPLE_URL]).exit_code == 0
    assert runner.invoke(args=["manifest", "outlook", "--base-url", EXAMPLE_URL]).exit_code == 0
    written = [str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()]
    assert "manifests/gmail/deployment.json" in written
    assert "manifests/outlook/manifest.xml" in written
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *written],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert sorted(ignored.stdout.split()) == sorted(written)
    tracked = subprocess.run(
        ["git", "ls-files", "manifests"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert not [path for path in tracked if path in written]


def _sign_in_domains(app) -> list[str]:
    with session_scope(app) as session:
        return list(session.scalars(sa.select(SignInDomain.domain)))


def test_allow_domain_refuses_free_mail_domains(app, runner, make_caller) -> None:
    make_caller("Acme", "ann@acme.test")
    for domain in ("gmail.com", "GMail.com", "outlook.com", "yahoo.co.uk"):
        result = runner.invoke(args=["orgs", "allow-domain", "--org", "Acme", "--domain", domain])
        assert result.exit_code != 0, result.output
        [line] = result.output.strip().splitlines()
        assert line.startswith(f"Error: {domain.lower()} is a free-mail domain"), line
        assert "Traceback" not in result.output
    assert _sign_in_domains(app) == []
    allowed = runner.invoke(args=["orgs", "allow-domain", "--org", "Acme", "--domain", "acme.test"])
    assert allowed.exit_code == 0, allowed.output
    assert _sign_in_domains(app) == ["acme.test"]


def test_allow_domain_refuses_the_configured_extra_free_mail_domains(
    tmp_path, sqlite_template
) -> None:
    path = tmp_path / "connector.sqlite3"
    shutil.copy(sqlite_template, path)
    app = create_app(
        base_config(
            DATABASE_URL=f"sqlite:///{path}", EXTRA_FREE_MAIL_DOMAINS="mail.example, Free.test"
        )
    )
    with session_scope(app) as session:
        orgs.get_or_create_org(session, "Acme")
    runner = app.test_cli_runner()
    for domain in ("mail.example", "free.test"):
        result = runner.invoke(args=["orgs", "allow-domain", "--org", "Acme", "--domain", domain])
        assert result.exit_code != 0 and "is a free-mail domain" in result.output, result.output
    assert _sign_in_domains(app) == []
    app.extensions["connector.engine"].dispose()

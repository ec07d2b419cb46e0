"""`connector import` and `connector export`: records in from other systems' files, and out."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import click
from flask import Flask
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from connector.audit import service as audit
from connector.cli.groups import Groups
from connector.cli.people import cli_actor
from connector.db import session_scope
from connector.orgs import service as orgs
from connector.orgs.context import Ctx
from connector.orgs.models import User
from connector.store import StoreUnavailable, get_store
from connector.transfer import exporting
from connector.transfer.headers import KINDS, MappingError, parse_overrides
from connector.transfer.importing import BATCH_SIZE, Summary, import_rows
from connector.transfer.reading import Source, UnreadableFile, open_source
from connector.transfer.runs import Rejects, acting_user


def record_audit(session: Session, actor: User, action: str, detail: dict[str, Any]) -> None:
    """An import or export in the audit log: run by whoever ran the command, on behalf of
    `actor` (whom the import acts as), in a session the caller commits."""
    audit.record(
        session,
        org_id=actor.organization_id,
        actor=cli_actor(),
        action=action,
        target=str(detail.get("kind", "")),
        detail={**detail, "as": actor.email},
    )


@contextlib.contextmanager
def progress_reporter(enabled: bool) -> Iterator[Any]:
    """rich's progress line (rows, rows per second) on a terminal; nothing elsewhere."""
    if not enabled:
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    started = time.monotonic()
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed:,.0f} rows"),
        TextColumn("{task.fields[rate]:,.0f} rows/s"),
        TimeElapsedColumn(),
        transient=True,
    ) as progress:
        task = progress.add_task("Importing", total=None, rate=0.0)

        def advance(rows: int) -> None:
            done = progress.tasks[0].completed + rows
            rate = done / max(time.monotonic() - started, 1e-6)
            progress.update(task, advance=rows, rate=rate)

        yield advance


def describe(source: Source) -> str:
    if source.format == "vcard":
        return f"vCard ({source.encoding})"
    separator = {"\t": "tab", ",": "','", ";": "';'"}.get(source.separator or ",", "','")
    return f"CSV ({source.encoding}, {separator}-separated)"


def register(app: Flask, groups: Groups) -> None:
    del groups  # import and export are commands of their own

    @app.cli.command("import")
    @click.argument("kind", type=click.Choice(sorted(KINDS)))
    @click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--org", "org_name", required=True, help="The organization to import into.")
    @click.option(
        "--map",
        "maps",
        multiple=True,
        metavar='"Column=field"',
        help="Read a column as a field (repeatable); an empty field ignores the column.",
    )
    @click.option(
        "--rejects",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Where the rejected rows go [default: FILE.rejected.csv].",
    )
    @click.option("--dry-run", is_flag=True, help="Report what would happen, write nothing.")
    @click.option(
        "--batch-size", default=BATCH_SIZE, show_default=True, type=click.IntRange(1, 10_000)
    )
    def import_command(
        kind: str,
        file: Path,
        org_name: str,
        maps: tuple[str, ...],
        rejects: Path | None,
        dry_run: bool,
        batch_size: int,
    ) -> None:
        """Import contacts, companies or leads from a CSV file (Outlook, Google Contacts,
        HubSpot, Salesforce, Odoo and others, matched by their headers) or a vCard file.

        Contacts are matched by any of their addresses, companies by domain or name, leads
        by their id column, else title and contact: importing a file again changes nothing.
        Rows that cannot be imported are skipped and written to the rejects file, with
        their line and the reason.
        """
        spec = KINDS[kind]
        try:
            source = open_source(file, spec, parse_overrides(list(maps), spec))
        except UnreadableFile as exc:
            raise click.ClickException(str(exc)) from exc
        except MappingError as exc:
            raise click.UsageError(str(exc)) from exc
        if source.format == "vcard" and kind != "contacts":
            raise click.UsageError("A vCard file holds contacts: `connector import contacts`.")
        click.echo(f"Reading {file} as {describe(source)}.", err=True)
        if source.column_map is not None and source.column_map.ignored:
            shown = ", ".join(source.column_map.ignored[:12])
            more = len(source.column_map.ignored) - 12
            tail = f" and {more} more" if more > 0 else ""
            click.echo(f"Columns not imported: {shown}{tail}.", err=True)

        rejects_path = rejects or file.with_name(file.name + ".rejected.csv")
        rejected = Rejects(rejects_path, source.columns)
        summary = Summary()
        started = time.monotonic()
        session: Session = app.extensions["connector.sessionmaker"]()
        try:
            org = orgs.find_org(session, org_name)
            if org is None:
                raise click.ClickException(f"There is no organization {org_name!r}.")
            user = acting_user(session, org.id)
            if user is None:
                raise click.ClickException(
                    f"{org_name} has no active user to import as: create one first "
                    "(`connector users create --org ... --admin`)."
                )
            ctx = Ctx(session, user, get_store(app), app.extensions["connector.settings"])
            with progress_reporter(sys.stdout.isatty()) as advance:
                summary = import_rows(
                    ctx,
                    kind,
                    source.rows,
                    commit=(lambda: None) if dry_run else session.commit,
                    reject=rejected,
                    progress=advance,
                    batch_size=batch_size,
                )
            if dry_run:
                session.rollback()
            else:
                record_audit(
                    session,
                    user,
                    "records.imported",
                    {
                        "kind": kind,
                        "file": file.name,
                        "created": summary.created,
                        "updated": summary.updated,
                        "unchanged": summary.unchanged,
                        "rejected": summary.rejected,
                    },
                )
                session.commit()
                _invalidate_lookups(app, org.id)
        except SQLAlchemyError as exc:
            session.rollback()
            raise click.ClickException(
                "The database failed during the import; what was imported before stays "
                f"(each batch is committed), and running it again goes on from there: {exc}"
            ) from exc
        finally:
            session.close()
            rejected.close()

        click.echo(summary.line() + (" (dry run: nothing was written)" if dry_run else ""))
        elapsed = time.monotonic() - started
        rate = summary.rows / elapsed if elapsed > 0 else 0.0
        click.echo(f"{summary.rows} rows in {elapsed:.1f} s ({rate:,.0f} rows/s).", err=True)
        if summary.companies_created:
            verb = "would be created" if dry_run else "created"
            click.echo(f"{summary.companies_created} new companies {verb} for them.")
        if summary.rejected:
            click.echo(f"Rejected rows (with their line and reason): {rejects_path}", err=True)
        if summary.rows and not summary.imported:
            raise click.ClickException("No row could be imported.")
        if not summary.rows:
            click.echo("The file has no rows to import.", err=True)

    @app.cli.command("export")
    @click.argument("kind", type=click.Choice(exporting.KINDS))
    @click.option("--org", "org_name", required=True, help="The organization to export.")
    @click.option(
        "--format", "fmt", type=click.Choice(exporting.FORMATS), default="csv", show_default=True
    )
    @click.option(
        "--output",
        type=click.Path(dir_okay=False, path_type=Path),
        help="The file to write [default: standard output].",
    )
    def export_command(kind: str, org_name: str, fmt: str, output: Path | None) -> None:
        """Export an organization's contacts, companies, leads, tickets or activities as CSV
        (headers that `connector import` reads back) or JSON lines, streamed."""
        with session_scope(app) as session:
            org = orgs.find_org(session, org_name)
            if org is None:
                raise click.ClickException(f"There is no organization {org_name!r}.")
            try:
                with _output(output) as out:
                    count = exporting.write(session, org.id, kind, fmt, out)
            except OSError as exc:
                where = output or "standard output"
                raise click.ClickException(f"Cannot write {where}: {exc.strerror}.") from exc
            actor = acting_user(session, org.id)
            if actor is not None:
                record_audit(
                    session,
                    actor,
                    "records.exported",
                    {"kind": kind, "format": fmt, "count": count},
                )
        click.echo(f"Exported {count} {kind} to {output or 'standard output'}.", err=True)


@contextlib.contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    with path.open("w", encoding="utf-8", newline="") as out:
        yield out


def _invalidate_lookups(app: Flask, org_id: int) -> None:
    """Rows inserted in bulk pass no ORM flush, which is what invalidates cached lookups
    otherwise: the organization's cached answers are dropped here, once."""
    from connector.lookup.service import invalidate_org

    try:
        invalidate_org(get_store(app), org_id, app.extensions["connector.engine"])
    except StoreUnavailable as exc:
        click.echo(f"Warning: cached lookups not invalidated ({exc}).", err=True)

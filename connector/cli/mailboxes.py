"""`connector mailboxes add|list|delete|poll`: IMAP folders polled for an alias (a Google
Workspace sales@ mailbox with an app password, say), and polling one now."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask
from sqlalchemy.orm import Session

from connector.audit import service as audit
from connector.cli.groups import Groups
from connector.cli.people import cli_actor, table, when
from connector.db import session_scope
from connector.errors import ServiceError
from connector.jobs.mailboxes import MailboxPollFailed, cipher_of, poll
from connector.mail import mailboxes as service
from connector.orgs import service as orgs
from connector.orgs.models import Organization


def _org(session: Session, name: str) -> Organization:
    org = orgs.find_org(session, name)
    if org is None:
        raise click.ClickException(f"There is no organization {name!r}.")
    return org


def register(app: Flask, groups: Groups) -> None:
    group = click.Group("mailboxes", help="IMAP mailboxes polled for an alias.")
    app.cli.add_command(group)

    @group.command("add")
    @click.option("--org", "org_name", required=True)
    @click.option("--alias", "alias_address", required=True, help="The alias it feeds.")
    @click.option(
        "--imap-url",
        required=True,
        help="imaps://USER@HOST[:993]/FOLDER (imap+starttls:// on 143; imap:// on loopback).",
    )
    @click.option(
        "--password-file",
        required=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="A file holding the password (or app password) alone.",
    )
    def add_command(org_name: str, alias_address: str, imap_url: str, password_file: Path) -> None:
        """Poll an IMAP folder for an alias: its new messages go where mail to the alias goes."""
        # The file's one line; a trailing newline is the editor's, not the password's.
        password = password_file.read_text().rstrip("\r\n")
        with session_scope(app) as session:
            org = _org(session, org_name)
            try:
                mailbox = service.add_mailbox(
                    session,
                    org,
                    alias_address=alias_address,
                    imap_url=imap_url,
                    password=password,
                    cipher=cipher_of(app),
                )
            except ServiceError as exc:
                raise click.ClickException(exc.message) from exc
            audit.record(
                session,
                org_id=org.id,
                actor=cli_actor(),
                action="mailbox.added",
                target=f"mailbox:{mailbox.id}",
                detail={"imap_url": mailbox.imap_url, "alias": mailbox.alias.address},
            )
            click.echo(
                f"Mailbox {mailbox.id}: {mailbox.imap_url} feeds {mailbox.alias.address}; "
                "`connector worker` polls it every minute."
            )

    @group.command("list")
    @click.option("--org", "org_name", help="Only this organization's.")
    def list_command(org_name: str | None) -> None:
        """The mailboxes, where polling stands, and the last error."""
        with session_scope(app) as session:
            org = _org(session, org_name) if org_name else None
            mailboxes = service.list_mailboxes(session, org)
            if not mailboxes:
                click.echo("No mailboxes.")
                return
            table(
                ["ID", "ORG", "ALIAS", "IMAP URL", "UIDVALIDITY", "LAST UID", "POLLED", "ERROR"],
                [
                    [
                        str(m.id),
                        m.alias.organization.name,
                        m.alias.address,
                        m.imap_url,
                        str(m.uidvalidity or "-"),
                        str(m.last_uid),
                        when(m.last_polled_at),
                        m.last_error or "",
                    ]
                    for m in mailboxes
                ],
            )

    @group.command("delete")
    @click.argument("mailbox_id", metavar="ID", type=int)
    def delete_command(mailbox_id: int) -> None:
        """Poll it no more; what it brought in stays."""
        with session_scope(app) as session:
            try:
                mailbox = service.get_mailbox(session, mailbox_id)
            except ServiceError as exc:
                raise click.ClickException(exc.message) from exc
            url, org_id = mailbox.imap_url, mailbox.organization_id
            service.delete_mailbox(session, mailbox)
            audit.record(
                session,
                org_id=org_id,
                actor=cli_actor(),
                action="mailbox.deleted",
                target=f"mailbox:{mailbox_id}",
                detail={"imap_url": url},
            )
        click.echo(f"Mailbox {mailbox_id} ({url}) is polled no more.")

    @group.command("poll")
    @click.argument("mailbox_id", metavar="[ID]", type=int, required=False)
    def poll_command(mailbox_id: int | None) -> None:
        """Poll a mailbox (or every one) now, in this command; routing is queued as usual."""
        with session_scope(app) as session:
            if mailbox_id is not None:
                try:
                    ids = [service.get_mailbox(session, mailbox_id).id]
                except ServiceError as exc:
                    raise click.ClickException(exc.message) from exc
            else:
                ids = [m.id for m in service.list_mailboxes(session)]
        failed = 0
        for each in ids:
            try:
                result = poll(app, each)
            except MailboxPollFailed as exc:
                failed += 1
                click.echo(f"Mailbox {each}: failed: {exc}", err=True)
                continue
            if result is not None:
                click.echo(
                    f"Mailbox {each}: {result.stored} new message(s) stored"
                    + (f", {result.passed_over} stored before" if result.passed_over else "")
                    + f"; last UID {result.last_uid} (UIDVALIDITY {result.uidvalidity})."
                )
        if not ids:
            click.echo("No mailboxes.")
        if failed:
            raise click.ClickException(f"{failed} mailbox(es) could not be polled.")

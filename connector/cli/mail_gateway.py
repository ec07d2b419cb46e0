"""`connector mail-gateway` serves SMTP for the organizations' aliases; `connector mail
queue|failed|retry|held` shows the mail that waits or failed and puts it back on its way."""

from __future__ import annotations

import asyncio
import logging

import click
from flask import Flask

from connector.cli.groups import Groups
from connector.cli.people import cli_actor, table
from connector.db import session_scope
from connector.gateway import operations as ops
from connector.gateway.server import serve
from connector.mail.models import InboundStatus, OutboundStatus
from connector.orgs import service as orgs
from connector.orm import utcnow

MAIL_HELP = "Mail of the organizations' aliases: the queues, failures, held messages."


def mail_group(app: Flask) -> click.Group:
    """`connector mail`, shared with the commands of other modules (`mail dns`): whichever
    registers first makes it."""
    existing = app.cli.commands.get("mail")
    if isinstance(existing, click.Group):
        return existing
    group = click.Group("mail", help=MAIL_HELP)
    app.cli.add_command(group)
    return group


def _org_id(app: Flask, name: str | None) -> int | None:
    if name is None:
        return None
    with session_scope(app) as session:
        org = orgs.find_org(session, name)
        if org is None:
            raise click.ClickException(f"There is no organization {name!r}.")
        return org.id


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _rows(found: list[ops.QueuedMail], with_error: bool) -> list[list[str]]:
    now = utcnow()
    rows = []
    for mail in found:
        row = [
            mail.key,
            mail.status,
            ops.age(mail.at, now),
            _cut(mail.sender, 40),
            _cut(", ".join(mail.recipients), 40),
            _cut(mail.subject, 50),
        ]
        if with_error:
            row.append((mail.error or "").splitlines()[0] if mail.error else "")
        rows.append(row)
    return rows


def _report_queued(app: Flask, inbound: list[int], outbound: list[int]) -> None:
    missed = ops.queue_jobs(app, inbound, outbound)
    if missed:
        click.echo(
            f"{missed} could not be queued now (see the log); the worker takes them up "
            "within a minute all the same.",
            err=True,
        )


def register(app: Flask, groups: Groups) -> None:
    @app.cli.command("mail-gateway")
    @click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
    @click.option("--port", default=2525, show_default=True, type=click.IntRange(0, 65535))
    def mail_gateway_command(host: str, port: int) -> None:
        """Receive mail for the aliases over SMTP until Ctrl-C (or SIGTERM).

        Recipients that are neither an alias nor a record's reply address are refused at
        RCPT; an accepted message is stored before the 250, then routed by `connector
        worker`.
        """
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )

        def started(bound: int) -> None:
            click.echo(f"Mail gateway on smtp://{host}:{bound}", err=True)

        try:
            asyncio.run(serve(app, host, port, started=started))
        except OSError as exc:
            raise click.ClickException(f"Cannot listen on {host}:{port}: {exc}") from exc

    group = mail_group(app)
    org_option = click.option("--org", "org_name", help="Only this organization's mail.")

    @group.command("queue")
    @org_option
    @click.option(
        "--limit",
        default=50,
        show_default=True,
        type=click.IntRange(min=1),
        help="At most this many messages each way, oldest first.",
    )
    def queue_command(org_name: str | None, limit: int) -> None:
        """The gateway and the worker, and the mail that waits: received and not routed yet,
        held, failed; outgoing mail queued or failed."""
        org_id = _org_id(app, org_name)
        with session_scope(app) as session:
            states = ops.heartbeat_states(session, utcnow())
            counts = ops.queue_counts(session)
            found = ops.list_inbound(session, ops.INBOUND_WAITING, org_id=org_id, limit=limit)
            found += ops.list_outbound(session, ops.OUTBOUND_WAITING, org_id=org_id, limit=limit)
        click.echo(f"Gateway: {states['gateway']}. Worker: {states['worker']}.")
        inbound, outbound = counts["inbound"], counts["outbound"]
        click.echo(
            "Inbound: " + ", ".join(f"{n} {status}" for status, n in inbound.items()) + ". "
            "Outbound: " + ", ".join(f"{n} {status}" for status, n in outbound.items()) + "."
        )
        if not found:
            click.echo("Nothing waits.")
            return
        table(["ID", "STATUS", "AGE", "FROM", "TO", "SUBJECT", "ERROR"], _rows(found, True))

    @group.command("failed")
    @org_option
    def failed_command(org_name: str | None) -> None:
        """The messages that failed after their last try, with their errors."""
        org_id = _org_id(app, org_name)
        with session_scope(app) as session:
            found = ops.list_inbound(session, [InboundStatus.FAILED], org_id=org_id)
            found += ops.list_outbound(session, [OutboundStatus.FAILED], org_id=org_id)
        if not found:
            click.echo("No failed messages.")
            return
        now = utcnow()
        for mail in found:
            click.echo(
                f"{mail.key}  {ops.age(mail.at, now)} ago  {mail.attempts} tries  "
                f"from {mail.sender} to {', '.join(mail.recipients)}"
            )
            click.echo(f"  Subject: {mail.subject}")
            for line in (mail.error or "(no error recorded)").splitlines():
                click.echo(f"  {line}")
        click.echo("\n`connector mail retry ID` (or --all) tries them again.")

    @group.command("retry")
    @click.argument("keys", metavar="[ID]...", nargs=-1)
    @click.option("--all", "retry_all", is_flag=True, help="Every failed message.")
    @org_option
    def retry_command(keys: tuple[str, ...], retry_all: bool, org_name: str | None) -> None:
        """Try failed messages again: incoming ones are routed anew, outgoing ones sent.

        IDs as `mail failed` lists them: in:12, out:5, or a bare 12 when only one
        message has that number.
        """
        if bool(keys) == retry_all:
            raise click.UsageError("Give the IDs of failed messages, or --all.")
        if org_name and not retry_all:
            raise click.UsageError("--org goes with --all.")
        org_id = _org_id(app, org_name)
        with session_scope(app) as session:
            if retry_all:
                inbound, outbound = ops.failed_ids(session, org_id)
            else:
                try:
                    inbound, outbound = ops.resolve_keys(
                        session, keys, InboundStatus.FAILED, OutboundStatus.FAILED
                    )
                except ops.UnknownMail as exc:
                    raise click.ClickException(
                        f"{exc} `connector mail failed` lists them."
                    ) from exc
            inbound = ops.retry_inbound(session, inbound)
            outbound = ops.retry_outbound(session, outbound)
        names = [f"in:{i}" for i in inbound] + [f"out:{i}" for i in outbound]
        if not names:
            click.echo("No failed messages.")
            return
        _report_queued(app, inbound, outbound)
        click.echo(f"Queued again: {', '.join(names)}.")

    @group.command("held")
    @org_option
    @click.option(
        "--release",
        "release",
        metavar="ID",
        multiple=True,
        help="Route this held message after all (repeat for several).",
    )
    def held_command(org_name: str | None, release: tuple[str, ...]) -> None:
        """The messages held back (their sender opened more records than the cap allows
        lately); --release routes one all the same, without the cap."""
        org_id = _org_id(app, org_name)
        if release:
            with session_scope(app) as session:
                try:
                    inbound, _ = ops.resolve_keys(session, release, InboundStatus.HELD, None)
                except ops.UnknownMail as exc:
                    raise click.ClickException(f"{exc} `connector mail held` lists them.") from exc
                inbound = ops.release_held(session, inbound, cli_actor())
            _report_queued(app, inbound, [])
            click.echo(f"Released: {', '.join(f'in:{i}' for i in inbound)}.")
            return
        with session_scope(app) as session:
            found = ops.list_inbound(session, [InboundStatus.HELD], org_id=org_id)
        if not found:
            click.echo("No held messages.")
            return
        table(["ID", "STATUS", "AGE", "FROM", "TO", "SUBJECT"], _rows(found, False))

"""The sending side of mail: `connector mail dns --org NAME` (the SPF, DKIM and DMARC
records to publish) and `connector mail-sink` (a local SMTP server keeping what is sent)."""

from __future__ import annotations

import threading
from pathlib import Path

import click
from flask import Flask

from connector.cli.groups import Groups
from connector.db import session_scope
from connector.orgs import service as orgs
from connector.providers.mail import dkim
from connector.providers.mail.smtp import SmtpConfigError, parse_smtp_url


def mail_group(app: Flask) -> click.Group:
    """`connector mail`, shared with the gateway's commands (whichever registers first makes
    it)."""
    group = app.cli.commands.get("mail")
    if not isinstance(group, click.Group):
        group = click.Group("mail", help="Mail: what is queued, sent and held; DNS records.")
        app.cli.add_command(group)
    return group


def register(app: Flask, groups: Groups) -> None:
    group = mail_group(app)

    @group.command("dns")
    @click.option("--org", "org_name", required=True, help="The organization.")
    def dns_command(org_name: str) -> None:
        """Print the DNS records (SPF, DKIM, DMARC) for the organization's mail domain, so
        that receivers trust the acknowledgments sent from its aliases."""
        with session_scope(app) as session:
            org = orgs.find_org(session, org_name)
            if org is None:
                raise click.ClickException(f"There is no organization {org_name!r}.")
            domain = org.mail_domain
        if domain is None:
            raise click.ClickException(
                f"{org_name} has no mail domain yet: "
                "connector orgs mail-domain --org NAME --domain D"
            )
        smtp_host = None
        if app.config["SMTP_URL"]:
            try:
                smtp_host = parse_smtp_url(app.config["SMTP_URL"]).host
            except SmtpConfigError as exc:
                raise click.ClickException(str(exc)) from None
        selector, key_file = app.config["DKIM_SELECTOR"], app.config["DKIM_KEY_FILE"]
        key = None
        if selector or key_file:
            if not (selector and key_file):
                raise click.ClickException(
                    "Set both CONNECTOR_DKIM_SELECTOR and CONNECTOR_DKIM_KEY_FILE, or neither."
                )
            try:
                key = dkim.load_key(selector, key_file)
            except dkim.DkimKeyError as exc:
                raise click.ClickException(str(exc)) from None
        click.echo(f"; DNS records for {domain}, to publish in its zone.")
        for line in dkim.dns_records(domain, smtp_host=smtp_host, key=key):
            click.echo(line)

    @app.cli.command("mail-sink")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", default=2526, show_default=True, type=click.IntRange(1, 65535))
    @click.option(
        "--folder",
        type=click.Path(file_okay=False, path_type=Path),
        help="Where each message is written, as <time>-<n>.eml "
        "[default: outbox in the instance folder].",
    )
    def mail_sink_command(host: str, port: int, folder: Path | None) -> None:
        """Run a local SMTP server that keeps every message it is sent as a file, and prints a
        line for each (for development: CONNECTOR_SMTP_URL=smtp://127.0.0.1:2526)."""
        from connector.providers.mail.sink import start_sink

        folder = folder or Path(app.instance_path) / "outbox"
        try:
            sink = start_sink(folder, host, port, lambda line: click.echo(line))
        except OSError as exc:
            raise click.ClickException(f"Cannot listen on {host}:{port}: {exc}") from None
        click.echo(f"Mail sink on smtp://{host}:{port}, writing to {folder}", err=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            sink.stop()

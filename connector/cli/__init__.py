"""The `connector` command: Flask's CLI with the connector's commands.

The groups (`users`, `keys`, `orgs`) are made here; the commands of a topic live in their
own module of this package, each adding to the groups through its `register`.
"""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from flask import Flask

from connector import page_links
from connector.cli.groups import CommandModule, Groups
from connector.config import ConfigError, check_production
from connector.db import session_scope
from connector.gunicorn_options import GUNICORN_OPTIONS
from connector.orgs import service as orgs
from connector.orgs.models import ApiKey, Role, User

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def command_modules() -> tuple[CommandModule, ...]:
    """The modules of this package that add commands, each by register(app, groups).

    Imported here, not at the top: they import the groups' types from connector.cli.groups.
    """
    from connector.cli import (
        admin_link,
        aliases,
        audit,
        jobs,
        mail_gateway,
        mail_out,
        mailboxes,
        people,
        transfer,
    )

    return (
        people,
        audit,
        jobs,
        admin_link,
        transfer,
        mail_out,
        mail_gateway,
        aliases,
        mailboxes,
    )


def init_app(app: Flask) -> None:
    @app.cli.command("demo")
    @click.option("--contacts", default=60, show_default=True, help="How many contacts.")
    @click.option("--companies", default=20, show_default=True, help="How many companies.")
    def demo_command(contacts: int, companies: int) -> None:
        """Load a demo organization (idempotent) and print the demo user's API key."""
        from connector.db import upgrade_schema
        from connector.demo.data import load_demo

        upgrade_schema(app)
        with session_scope(app) as session:
            result = load_demo(
                session, app.config["SECRET_KEY"], contacts=contacts, companies=companies
            )
        state = "created" if result.created else "already there, unchanged"
        click.echo(f"Demo organization {result.org_name!r}: {state}.")
        click.echo(f"Demo user: {result.user_email}")
        click.echo(f"Demo API key: {result.api_key}")

    @app.cli.command("purge")
    @click.option(
        "--older-than",
        required=True,
        help="How long a record must have been archived: 12h, 30d, 90d, 2w.",
    )
    @click.option("--dry-run", is_flag=True, help="Count what would go, remove nothing.")
    @click.option(
        "--background", is_flag=True, help="Queue it as a job for `connector worker` to run."
    )
    def purge_command(older_than: str, dry_run: bool, background: bool) -> None:
        """Remove archived records for good, with their history and the emails and notes
        logged on them alone (what is also on another record stays there)."""
        from connector.cli.people import cli_actor
        from connector.errors import InvalidInput
        from connector.jobs import get_jobs
        from connector.jobs.tasks import record_purge
        from connector.lifecycle.purge import parse_age, purge_archived

        try:
            age = parse_age(older_than)
        except InvalidInput as exc:
            raise click.BadParameter(exc.message, param_hint="--older-than") from exc
        if background:
            if dry_run:
                raise click.UsageError("--dry-run counts at once: leave out --background.")
            job_id = get_jobs(app).enqueue("purge", older_than=older_than, actor=cli_actor())
            click.echo(f"Queued purge job {job_id}: `connector worker` runs it.")
            return
        with session_scope(app) as session:
            result = purge_archived(session, age)
            if dry_run:
                session.rollback()
            else:
                record_purge(session, result, older_than, cli_actor())
                session.commit()
        counts = ", ".join(f"{n} {kind}(s)" for kind, n in result.records.items())
        verb = "Would remove" if dry_run else "Removed"
        click.echo(f"{verb} {counts}, and {result.activities} email(s) and note(s) with them.")

    users = click.Group("users", help="Manage users.")
    app.cli.add_command(users)

    @users.command("create")
    @click.option("--org", "org_name", required=True, help="Organization (created if new).")
    @click.option("--email", required=True)
    @click.option("--name", required=True)
    @click.option("--admin", is_flag=True, help="Make the user an admin.")
    def create_user_command(org_name: str, email: str, name: str, admin: bool) -> None:
        """Create a user in an organization."""
        from connector.addresses import normalize_email

        if normalize_email(email) is None:
            raise click.BadParameter(f"{email!r} is not an email address", param_hint="--email")
        with session_scope(app) as session:
            org = orgs.get_or_create_org(session, org_name)
            try:
                user = orgs.create_user(
                    session, org, email, name, Role.ADMIN if admin else Role.MEMBER
                )
            except orgs.ConflictError as exc:
                raise click.ClickException(str(exc)) from exc
            from connector.audit import service as audit
            from connector.cli.people import cli_actor

            audit.record(
                session,
                org_id=org.id,
                actor=cli_actor(),
                action="user.created",
                target=f"user:{user.id}",
                detail={"email": user.email, "role": str(user.role)},
            )
            click.echo(f"Created {user.role} {user.email} in {org.name} (user id {user.id}).")

    orgs_group = click.Group("orgs", help="Manage organizations.")
    app.cli.add_command(orgs_group)

    @orgs_group.command("bind-entra")
    @click.option("--org", "org_name", required=True)
    @click.option("--tenant", required=True, help="The Entra tenant ID (a GUID).")
    def bind_entra_command(org_name: str, tenant: str) -> None:
        """Let the Entra tenant's users reach this organization with their Outlook sign-in."""
        import uuid

        try:
            tenant_id = str(uuid.UUID(tenant))
        except ValueError as exc:
            raise click.BadParameter("not a tenant ID (a GUID)", param_hint="--tenant") from exc
        with session_scope(app) as session:
            org = orgs.find_org(session, org_name)
            if org is None:
                raise click.ClickException(f"There is no organization {org_name!r}.")
            other = orgs.org_for_tenant(session, tenant_id)
            if other is not None and other.id != org.id:
                raise click.ClickException(f"That tenant is bound to {other.name!r} already.")
            org.entra_tenant_id = tenant_id
        click.echo(f"{org_name} now accepts Entra ID sign-ins from tenant {tenant_id}.")

    @orgs_group.command("allow-domain")
    @click.option("--org", "org_name", required=True)
    @click.option("--domain", required=True, help="An email domain, e.g. acme.com.")
    @click.option("--remove", is_flag=True, help="Stop creating users for this domain.")
    def allow_domain_command(org_name: str, domain: str, remove: bool) -> None:
        """Make people of an email domain users of this organization when they first sign in.

        Google accounts must be managed by the domain's Workspace (hd claim); Microsoft
        accounts must come from the organization's bound Entra tenant.
        """
        from connector.addresses import normalize_domain

        clean = normalize_domain(domain)
        if clean is None or len(clean) > 253:
            raise click.BadParameter("not an email domain", param_hint="--domain")
        domain = clean
        with session_scope(app) as session:
            org = orgs.find_org(session, org_name)
            if org is None:
                raise click.ClickException(f"There is no organization {org_name!r}.")
            if remove:
                removed = orgs.remove_sign_in_domain(session, org, domain)
                click.echo(f"{domain} {'removed' if removed else 'was not a sign-in domain'}.")
                return
            # The bundled free-mail list plus CONNECTOR_EXTRA_FREE_MAIL_DOMAINS.
            free_mail = app.extensions["connector.settings"].free_mail
            try:
                orgs.allow_sign_in_domain(session, org, domain, free_mail)
            except (orgs.ConflictError, orgs.FreeMailDomainError) as exc:
                raise click.ClickException(str(exc)) from exc
        click.echo(f"People at {domain} become users of {org_name} when they first sign in.")

    keys = click.Group("keys", help="Manage API keys.")
    app.cli.add_command(keys)

    @keys.command("issue")
    @click.option("--email", required=True, help="The user the key is for.")
    @click.option("--label", default="", help="What the key is for (shown when listing).")
    def issue_key_command(email: str, label: str) -> None:
        """Issue a new API key for a user and print it (it is shown only once)."""
        with session_scope(app) as session:
            user = orgs.find_user(session, email)
            if user is None:
                raise click.ClickException(f"There is no user {email}.")
            key, raw_key = orgs.new_key(session, user, label)
            audit_key_issued(session, user, key)
            click.echo(raw_key)

    manifest = click.Group("manifest", help="Write the mail clients' manifests.")
    app.cli.add_command(manifest)

    @manifest.command("gmail")
    @click.option("--base-url", help="The public https URL [default: CONNECTOR_PUBLIC_URL].")
    @click.option(
        "--output",
        type=click.Path(dir_okay=False, path_type=Path),
        default=Path("manifests/gmail/deployment.json"),
        show_default=True,
    )
    def gmail_manifest_command(base_url: str | None, output: Path) -> None:
        """Write the Gmail add-on's deployment descriptor."""
        from connector.manifests.gmail import gmail_deployment

        base = (base_url or app.config["PUBLIC_URL"]).rstrip("/")
        if not base.startswith("https://"):
            click.echo(
                f"Warning: {base} is not https; Google calls only https endpoints.", err=True
            )
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(gmail_deployment(base), indent=2) + "\n")
        click.echo(f"Wrote {output}")
        # The descriptor has no place for these: the Marketplace SDK's store listing asks.
        found = page_links.links(app.config, base)
        click.echo(f"Marketplace SDK store listing: privacy policy URL {found.privacy}")
        click.echo(f"  terms of service URL {found.terms}, support URL {found.support}")

    @manifest.command("outlook")
    @click.option("--base-url", help="The public https URL [default: CONNECTOR_PUBLIC_URL].")
    @click.option(
        "--output-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("manifests/outlook"),
        show_default=True,
    )
    def outlook_manifest_command(base_url: str | None, output_dir: Path) -> None:
        """Write the Outlook add-in's XML manifest, and the unified JSON manifest with its icons."""
        import shutil

        from connector.manifests.outlook_json import outlook_json_manifest
        from connector.manifests.outlook_xml import outlook_xml_manifest

        base = (base_url or app.config["PUBLIC_URL"]).rstrip("/")
        if not base.startswith("https://"):
            raise click.UsageError(f"{base} is not https: Outlook loads add-ins only over https.")
        client_id = app.config["MS_CLIENT_ID"] or None
        output_dir.mkdir(parents=True, exist_ok=True)
        found = page_links.links(app.config, base)
        (output_dir / "manifest.xml").write_bytes(
            outlook_xml_manifest(base, client_id, links=found)
        )
        unified = outlook_json_manifest(base, client_id, links=found)
        (output_dir / "manifest.json").write_text(json.dumps(unified, indent=2) + "\n")
        # The JSON manifest's app package holds its two icons beside it.
        static = Path(app.static_folder or "static")
        shutil.copyfile(static / "icon-color-192.png", output_dir / "icon-color.png")
        shutil.copyfile(static / "icon-outline-32.png", output_dir / "icon-outline.png")
        click.echo(f"Wrote {output_dir}/manifest.xml and manifest.json (with its icons)")

    @app.cli.command("serve")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", default=8000, show_default=True, type=int)
    @click.option(
        "--workers",
        type=click.IntRange(min=1),
        help="Worker processes [default: 2 x cores + 1 with Redis, else 1].",
    )
    @click.option("--threads", default=GUNICORN_OPTIONS["threads"], show_default=True, type=int)
    def serve_command(host: str, port: int, workers: int | None, threads: int) -> None:
        """Run the service under gunicorn, as in production."""
        from gunicorn.app.base import BaseApplication

        process_count = worker_count(app.config["REDIS_URL"], workers)
        if app.config["ENV_NAME"] == "production":
            try:
                check_production(app.config, workers=process_count)
            except ConfigError as error:
                raise click.ClickException(str(error)) from None

        class Server(BaseApplication):
            def load_config(self) -> None:
                options: dict[str, Any] = {
                    **GUNICORN_OPTIONS,
                    "bind": f"{host}:{port}",
                    "workers": process_count,
                    "threads": threads,
                    "accesslog": "-",
                    "post_fork": post_fork,
                }
                for key, value in options.items():
                    self.cfg.set(key, value)

            # Flask is a WSGI application, but types-gunicorn's start_response is narrower
            # than PEP 3333's (no exc_info, no write callable), so Flask's type does not fit.
            def load(self) -> Flask:  # type: ignore[override]
                return app

        def post_fork(_server: Any, _worker: Any) -> None:
            # The app was made before the fork: give each worker its own connections.
            app.extensions["connector.engine"].dispose(close=False)

        click.echo(f"Serving on http://{host}:{port} (public URL {app.config['PUBLIC_URL']})")
        Server().run()

    groups = Groups(users=users, keys=keys, orgs=orgs_group)
    for module in command_modules():
        module.register(app, groups)


def audit_key_issued(session: Session, user: User, key: ApiKey) -> None:
    from connector.audit import service as audit
    from connector.cli.people import cli_actor

    audit.record(
        session,
        org_id=user.organization_id,
        actor=cli_actor(),
        action="key.issued",
        target=f"key:{key.id}",
        detail={"user": user.email, "label": key.label},
    )


def worker_count(redis_url: str | None, requested: int | None) -> int:
    """How many worker processes: several only when they can share state through Redis.

    The in-process store lives in one process: with several workers, one would
    serve lookups that another's write had invalidated.
    """
    if redis_url:
        return requested or multiprocessing.cpu_count() * 2 + 1
    if requested not in (None, 1):
        raise click.UsageError(
            "Several workers share state only through Redis: set CONNECTOR_REDIS_URL, "
            "or run one worker (its threads serve requests concurrently)."
        )
    return 1

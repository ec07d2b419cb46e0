"""An organization's mail: `orgs mail-domain`, and `aliases create|list|delete`.

Mail to an alias (sales@D, support@D) opens a lead, a ticket or a task, or lands on the
record it follows up; see docs/mail-aliases.md.
"""

from __future__ import annotations

import click
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.cli.groups import Groups
from connector.cli.people import cli_actor, table
from connector.db import session_scope
from connector.email_templates.models import EmailTemplate
from connector.errors import ServiceError
from connector.mail import aliases as mail
from connector.mail.models import Accept, Alias, Creates
from connector.orgs import service as orgs
from connector.orgs.models import Organization, User


def _org(session: Session, name: str) -> Organization:
    org = orgs.find_org(session, name)
    if org is None:
        raise click.ClickException(f"There is no organization {name!r}.")
    return org


def _owner(session: Session, org: Organization, email: str | None) -> User | None:
    if email is None:
        return None
    user = orgs.find_user(session, email)
    if user is None or user.organization_id != org.id:
        raise click.BadParameter(f"{email} is no user of {org.name}.", param_hint="--owner")
    return user


def _template(session: Session, org: Organization, name: str | None) -> EmailTemplate | None:
    """The named template of the organization; None for the built-in acknowledgment."""
    if not name:
        return None
    template = session.scalar(
        select(EmailTemplate).where(
            EmailTemplate.organization_id == org.id, EmailTemplate.name == name
        )
    )
    if template is None:
        raise click.BadParameter(
            f"{org.name} has no template named {name!r} (see the admin page's Reply templates).",
            param_hint="--auto-reply",
        )
    return template


def auto_reply_text(alias: Alias, template_name: str | None) -> str:
    if not alias.auto_reply:
        return "no"
    return f"template {template_name!r}" if template_name else "built-in"


def register(app: Flask, groups: Groups) -> None:
    @groups.orgs.command("mail-domain")
    @click.option("--org", "org_name", required=True)
    @click.option("--domain", required=True, help="The domain its aliases are at: acme.com.")
    def mail_domain_command(org_name: str, domain: str) -> None:
        """Set the organization's mail domain, the one its aliases (sales@, support@) are at."""
        with session_scope(app) as session:
            org = _org(session, org_name)
            try:
                clean = mail.set_mail_domain(
                    session,
                    org,
                    domain,
                    app.extensions["connector.settings"].free_mail,
                    actor=cli_actor(),
                )
            except ServiceError as exc:
                raise click.ClickException(exc.message) from exc
            session.commit()
            click.echo(f"{org.name}'s mail domain is {clean}.")

    group = click.Group("aliases", help="Team addresses (sales@, support@) that open records.")
    app.cli.add_command(group)

    @group.command("create")
    @click.option("--org", "org_name", required=True)
    @click.option("--address", required=True, help="sales@D, at the organization's mail domain.")
    @click.option(
        "--creates",
        required=True,
        type=click.Choice([c.value for c in Creates]),
        help="What mail to it opens, when it follows up no record.",
    )
    @click.option("--owner", "owner_email", help="Who owns what it opens (a user's email).")
    @click.option(
        "--accept",
        default=Accept.EVERYONE.value,
        show_default=True,
        type=click.Choice([a.value for a in Accept]),
        help="Whose mail it takes: anyone's, known contacts' only, or the team's only.",
    )
    @click.option(
        "--auto-reply",
        "auto_reply",
        is_flag=False,
        flag_value="",
        default=None,
        metavar="[TEMPLATE_NAME]",
        help="Acknowledge each new record's sender: alone, with a plain built-in message; "
        "with a template's name, with that template.",
    )
    def create_command(
        org_name: str,
        address: str,
        creates: str,
        owner_email: str | None,
        accept: str,
        auto_reply: str | None,
    ) -> None:
        """Create an alias: mail to it opens a lead, a ticket or a task."""
        with session_scope(app) as session:
            org = _org(session, org_name)
            template = _template(session, org, auto_reply)
            try:
                alias = mail.create_alias(
                    session,
                    org,
                    address=address,
                    creates=creates,
                    owner=_owner(session, org, owner_email),
                    accept=accept,
                    auto_reply=auto_reply is not None,
                    auto_reply_template=template,
                    actor=cli_actor(),
                )
            except ServiceError as exc:
                raise click.ClickException(exc.message) from exc
            session.commit()
            click.echo(
                f"Created alias {alias.address} (id {alias.id}): mail to it opens a "
                f"{alias.creates}; acknowledgment: "
                f"{auto_reply_text(alias, template.name if template else None)}."
            )

    @group.command("list")
    @click.option("--org", "org_name", help="Only this organization's.")
    def list_command(org_name: str | None) -> None:
        """List aliases, with what they open, whose mail they take and who owns it."""
        with session_scope(app) as session:
            org = _org(session, org_name) if org_name else None
            found = mail.list_aliases(session, org)
            used = [a.auto_reply_template_id for a in found if a.auto_reply_template_id]
            names = {
                template_id: name
                for template_id, name in session.execute(
                    select(EmailTemplate.id, EmailTemplate.name).where(EmailTemplate.id.in_(used))
                )
            }
            rows = [
                [
                    str(a.id),
                    a.address,
                    a.organization.name,
                    str(a.creates),
                    str(a.accept),
                    a.owner.email if a.owner else "-",
                    auto_reply_text(a, names.get(a.auto_reply_template_id or 0)),
                ]
                for a in found
            ]
        if not rows:
            click.echo("No aliases.")
            return
        table(["ID", "ADDRESS", "ORGANIZATION", "CREATES", "ACCEPTS", "OWNER", "AUTO-REPLY"], rows)

    @group.command("delete")
    @click.argument("address")
    def delete_command(address: str) -> None:
        """Delete an alias: mail to it is refused from now on; what came through it stays."""
        with session_scope(app) as session:
            alias = mail.alias_for_address(session, address)
            if alias is None:
                raise click.ClickException(f"There is no alias {address.strip()}.")
            clean = alias.address
            mail.delete_alias(session, alias, actor=cli_actor())
            session.commit()
        click.echo(f"Deleted alias {clean}: mail to it is refused from now on.")

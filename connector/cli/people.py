"""Who has access: `users list|deactivate|reactivate|set-role`, `keys list|revoke`, `orgs list`.

Deactivating a user takes their access away at once (keys, Entra tokens, add-on requests,
browser sessions, record links) and keeps their records; reactivating gives it back.
"""

from __future__ import annotations

import datetime as dt
import getpass
from collections.abc import Sequence

import click
from flask import Flask
from sqlalchemy.orm import Session

from connector.audit import service as audit
from connector.cli.groups import Groups
from connector.db import session_scope
from connector.orgs import service as orgs
from connector.orgs.models import Organization, Role, User


def when(moment: dt.datetime | None, never: str = "never") -> str:
    """A time as the tables show it: UTC, to the minute."""
    if moment is None:
        return never
    if moment.tzinfo is None:  # SQLite gives naive datetimes back; they are UTC
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns padded to their widest cell; the last one is not padded."""
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    click.echo(line(headers))
    for row in rows:
        click.echo(line(row))


def cli_actor() -> str:
    """Who ran a command, as the audit log names them: "cli:<login>"."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        return "cli"


def _user(session: Session, email: str) -> User:
    user = orgs.find_user(session, email)
    if user is None:
        raise click.ClickException(f"There is no user {email.strip()}.")
    return user


def _org(session: Session, name: str) -> Organization:
    org = orgs.find_org(session, name)
    if org is None:
        raise click.ClickException(f"There is no organization {name!r}.")
    return org


def _audit_user(
    session: Session, user: User, action: str, detail: dict[str, str] | None = None
) -> None:
    audit.record(
        session,
        org_id=user.organization_id,
        actor=cli_actor(),
        action=action,
        target=f"user:{user.id}",
        detail={"email": user.email, **(detail or {})},
    )


def register(app: Flask, groups: Groups) -> None:
    users, keys, orgs_group = groups.users, groups.keys, groups.orgs

    @users.command("list")
    @click.option("--org", "org_name", help="Only this organization's users.")
    def list_users_command(org_name: str | None) -> None:
        """List users: address, name, role, organization, status, last API key use."""
        with session_scope(app) as session:
            org = _org(session, org_name) if org_name else None
            found = orgs.list_users(session, org)
            last = orgs.last_key_use(session, [u.id for u in found])
            rows = [
                [
                    u.email,
                    u.name,
                    str(u.role),
                    u.organization.name,
                    "active" if u.active else f"deactivated {when(u.deactivated_at)}",
                    when(last.get(u.id)),
                ]
                for u in found
            ]
        if not rows:
            click.echo("No users.")
            return
        table(["EMAIL", "NAME", "ROLE", "ORGANIZATION", "STATUS", "LAST KEY USE"], rows)

    @users.command("deactivate")
    @click.option("--email", required=True)
    def deactivate_command(email: str) -> None:
        """Take a user's access away at once (keys, tokens, sessions, links); their records
        stay. `users reactivate` gives it back."""
        with session_scope(app) as session:
            user = _user(session, email)
            changed = orgs.deactivate_user(session, user)
            address = user.email
            if changed:
                _audit_user(session, user, "user.deactivated")
        if changed:
            click.echo(f"Deactivated {address}: their keys, tokens, sessions and links stop now.")
        else:
            click.echo(f"{address} was deactivated already.")

    @users.command("reactivate")
    @click.option("--email", required=True)
    def reactivate_command(email: str) -> None:
        """Give a deactivated user their access back (keys not revoked work again)."""
        with session_scope(app) as session:
            user = _user(session, email)
            changed = orgs.reactivate_user(session, user)
            address = user.email
            if changed:
                _audit_user(session, user, "user.reactivated")
        click.echo(f"Reactivated {address}." if changed else f"{address} is active already.")

    @users.command("set-role")
    @click.option("--email", required=True)
    @click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
    def set_role_command(email: str, role: str) -> None:
        """Make a user an admin (manages users, keys, templates; restores and purges) or a
        member (works with records)."""
        with session_scope(app) as session:
            user = _user(session, email)
            was = user.role
            changed = orgs.set_role(session, user, Role(role))
            address = user.email
            if changed:
                _audit_user(session, user, "user.role_changed", {"from": str(was), "to": role})
        click.echo(f"{address} is now {role}." if changed else f"{address} is {role} already.")

    @keys.command("list")
    @click.option("--email", help="Only this user's keys.")
    def list_keys_command(email: str | None) -> None:
        """List API keys: id, user, label, first characters, created, last used, revoked.

        The keys themselves are never shown: only their hash is kept."""
        with session_scope(app) as session:
            user = _user(session, email) if email else None
            rows = [
                [
                    str(k.id),
                    k.user.email,
                    k.label or "-",
                    f"{k.prefix}...",
                    when(k.created_at),
                    when(k.last_used_at),
                    when(k.revoked_at, never="-"),
                ]
                for k in orgs.list_keys(session, user)
            ]
        if not rows:
            click.echo("No API keys.")
            return
        table(["ID", "USER", "LABEL", "KEY", "CREATED", "LAST USED", "REVOKED"], rows)

    @keys.command("revoke")
    @click.argument("key_id", metavar="ID", type=click.IntRange(min=1, max=2**31 - 1))
    def revoke_key_command(key_id: int) -> None:
        """Revoke an API key by its id (from `keys list`): refused from the next request on."""
        with session_scope(app) as session:
            key = orgs.get_key(session, key_id)
            if key is None:
                raise click.ClickException(f"There is no API key {key_id}.")
            if key.revoked_at is not None:
                click.echo(f"Key {key_id} was revoked already ({when(key.revoked_at)}).")
                return
            orgs.revoke_key(session, key)
            address = key.user.email
            audit.record(
                session,
                org_id=key.user.organization_id,
                actor=cli_actor(),
                action="key.revoked",
                target=f"key:{key.id}",
                detail={"user": address, "label": key.label},
            )
        click.echo(f"Revoked key {key_id} of {address}.")

    @orgs_group.command("list")
    def list_orgs_command() -> None:
        """List organizations, with their users and Entra tenant."""
        with session_scope(app) as session:
            found = orgs.list_orgs(session)
            active: dict[int, int] = {}
            total: dict[int, int] = {}
            for u in orgs.list_users(session):
                active[u.organization_id] = active.get(u.organization_id, 0) + u.active
                total[u.organization_id] = total.get(u.organization_id, 0) + 1
            rows = [
                [
                    str(o.id),
                    o.name,
                    f"{active.get(o.id, 0)} active of {total.get(o.id, 0)}",
                    o.entra_tenant_id or "-",
                ]
                for o in found
            ]
        if not rows:
            click.echo("No organizations.")
            return
        table(["ID", "NAME", "USERS", "ENTRA TENANT"], rows)

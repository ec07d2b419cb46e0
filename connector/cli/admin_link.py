"""`connector admin-link`: a one-time sign-in link to the admin page."""

from __future__ import annotations

import click
from flask import Flask

from connector.admin_links import MAX_AGE_SECONDS, admin_link
from connector.cli.groups import Groups
from connector.db import session_scope
from connector.orgs import service as orgs
from connector.orgs.models import Role


def register(app: Flask, groups: Groups) -> None:
    @app.cli.command("admin-link")
    @click.option("--email", required=True, help="An admin of the organization.")
    def admin_link_command(email: str) -> None:
        """Print a link that signs an admin in to /admin, once, within 15 minutes (for
        servers with neither Google nor Microsoft sign-in)."""
        with session_scope(app) as session:
            user = orgs.find_user(session, email)
            if user is None:
                raise click.ClickException(f"There is no user {email}.")
            if user.role != Role.ADMIN:
                raise click.ClickException(f"{email} is not an admin (connector users set-role).")
            user_id = user.id
        link = admin_link(app.config["PUBLIC_URL"], app.config["SECRET_KEY"], user_id)
        click.echo(link)
        click.echo(f"It works once, within {MAX_AGE_SECONDS // 60} minutes.", err=True)

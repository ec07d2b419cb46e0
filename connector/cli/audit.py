"""`connector audit [--since 7d|DATE] [--org NAME]`: who did what, and when."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click
from flask import Flask

from connector.audit import service as audit
from connector.cli.groups import Groups
from connector.cli.people import table, when
from connector.db import session_scope
from connector.errors import InvalidInput
from connector.lifecycle.purge import parse_age
from connector.orgs import service as orgs
from connector.orm import utcnow


def parse_since(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """An age back from now (12h, 7d, 2w) or an ISO date or time (UTC unless it says)."""
    try:
        return (now or utcnow()) - parse_age(text)
    except InvalidInput:
        pass
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither an age (12h, 7d, 2w) nor a date (2026-05-01, 2026-05-01T09:30)",
            param_hint="--since",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def _detail(detail: dict[str, Any]) -> str:
    return " ".join(
        f"{key}={value if isinstance(value, str) else json.dumps(value)}"
        for key, value in detail.items()
    )


def register(app: Flask, groups: Groups) -> None:
    @app.cli.command("audit")
    @click.option(
        "--since",
        default="7d",
        show_default=True,
        help="An age (12h, 7d, 2w) or a date or time in UTC (2026-05-01, 2026-05-01T09:30).",
    )
    @click.option("--org", "org_name", help="Only this organization (and what concerns all).")
    def audit_command(since: str, org_name: str | None) -> None:
        """Print the audit log: sign-ins, keys issued and revoked, users deactivated,
        reactivated or given another role, records archived, restored, merged, purged."""
        start = parse_since(since)
        with session_scope(app) as session:
            org_id = None
            if org_name:
                org = orgs.find_org(session, org_name)
                if org is None:
                    raise click.ClickException(f"There is no organization {org_name!r}.")
                org_id = org.id
            names = {o.id: o.name for o in orgs.list_orgs(session)}
            rows = [
                [
                    when(e.at).removesuffix(" UTC"),
                    names.get(e.organization_id, "-") if e.organization_id else "(all)",
                    e.actor,
                    e.action,
                    e.target or "-",
                    _detail(e.detail or {}),
                ]
                for e in audit.events(session, org_id, start)
            ]
        if not rows:
            click.echo(f"No events since {when(start)}.")
            return
        table(["TIME (UTC)", "ORGANIZATION", "ACTOR", "ACTION", "TARGET", "DETAIL"], rows)

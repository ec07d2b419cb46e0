"""Writing and reading the audit log.

Entry points (views, commands) record what they do in the same unit of work as the change
itself, before they commit: a change rolled back leaves no event, and an event never
stands for a change that did not happen. Actions are "noun.verb-ed":

- user.created, user.signed_in, user.deactivated, user.reactivated, user.role_changed
- key.issued, key.revoked
- record.archived, record.restored, record.merged, records.purged
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from connector.audit.models import AuditEvent
from connector.orgs.models import User
from connector.orm import utcnow

ACTOR_LENGTH = 320
TARGET_LENGTH = 200


def record(
    session: Session,
    *,
    org_id: int | None,
    actor: User | str | None,
    action: str,
    target: str = "",
    detail: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Add an event to the session (the caller commits it with the change it describes).

    `actor` is the user who did it, or a text for what is no user ("cli:root", a job);
    None for the connector itself. A user's address is kept as text too, so that the
    event outlives them.
    """
    if isinstance(actor, User):
        actor_id: int | None = actor.id
        actor_text = actor.email
    else:
        actor_id, actor_text = None, actor or "connector"
    event = AuditEvent(
        organization_id=org_id,
        at=utcnow(),
        actor_id=actor_id,
        actor=actor_text[:ACTOR_LENGTH],
        action=action,
        target=target[:TARGET_LENGTH],
        detail=dict(detail or {}),
    )
    session.add(event)
    return event


def events(
    session: Session,
    org_id: int | None = None,
    since: dt.datetime | None = None,
    *,
    limit: int | None = None,
    newest_first: bool = False,
) -> list[AuditEvent]:
    """Events oldest first (or newest first): of one organization (with those that concern
    every organization, such as a purge), or of all when `org_id` is None; from `since` on."""
    query = select(AuditEvent).order_by(AuditEvent.at, AuditEvent.id)
    if org_id is not None:
        query = query.where(
            or_(AuditEvent.organization_id == org_id, AuditEvent.organization_id.is_(None))
        )
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    newest = query.order_by(None).order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    if limit is not None:
        # The newest `limit`, oldest first unless asked otherwise.
        found = list(session.scalars(newest.limit(limit)))
        return found if newest_first else found[::-1]
    return list(session.scalars(newest if newest_first else query))

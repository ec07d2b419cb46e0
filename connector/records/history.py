"""The history of a record: who changed which field, from what to what, and when."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from connector.orgs.context import Ctx
from connector.orm import utcnow
from connector.records.models import RecordChange
from connector.records.refs import RecordRef

HISTORY_LIMIT = 50


def record_change(
    ctx: Ctx,
    ref: RecordRef,
    field: str,
    before: Any,
    after: Any,
    *,
    before_label: str | None = None,
    after_label: str | None = None,
) -> RecordChange:
    """Write one entry of the record's history, by the caller, now."""
    change = RecordChange(
        organization_id=ctx.org_id,
        record_type=ref.type,
        record_id=ref.id,
        at=utcnow(),
        by_id=ctx.user.id,
        by_name=ctx.user.name or ctx.user.email,
        field=field,
        from_value=before,
        to_value=after,
        from_label=before_label,
        to_label=after_label,
    )
    ctx.session.add(change)
    return change


def history_of(ctx: Ctx, ref: RecordRef, limit: int = HISTORY_LIMIT) -> list[RecordChange]:
    """The record's latest changes, newest first."""
    query = (
        select(RecordChange)
        .where(
            RecordChange.organization_id == ctx.org_id,
            RecordChange.record_type == ref.type,
            RecordChange.record_id == ref.id,
        )
        .order_by(RecordChange.id.desc())
        .limit(limit)
    )
    return list(ctx.session.scalars(query))


def forget_history(ctx: Ctx, ref: RecordRef) -> None:
    """Remove the record's history (it is being removed for good)."""
    ctx.session.execute(
        delete(RecordChange).where(
            RecordChange.organization_id == ctx.org_id,
            RecordChange.record_type == ref.type,
            RecordChange.record_id == ref.id,
        )
    )

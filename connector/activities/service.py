"""Logging emails and notes on records, and reading a record's timeline."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from connector.activities.email_data import EmailData
from connector.activities.html_text import sanitize_html, text_to_html
from connector.activities.models import Activity, ActivityKind, ActivityLink, Attachment
from connector.errors import InvalidInput, NotFound
from connector.orgs.context import Ctx
from connector.orm import utcnow
from connector.records.refs import RecordRef
from connector.records.service import get_record


@dataclass(frozen=True)
class LogResult:
    activity: Activity
    created: bool
    newly_linked: list[RecordRef]
    already_linked: list[RecordRef]

    @property
    def already_logged(self) -> bool:
        """True when nothing new was written: the email was on every record already."""
        return not self.created and not self.newly_linked


def _dedupe(refs: Sequence[RecordRef]) -> list[RecordRef]:
    return list(dict.fromkeys(refs))


def check_records(ctx: Ctx, refs: Sequence[RecordRef]) -> list[RecordRef]:
    """The distinct records, each checked to exist in the caller's organization, or an error."""
    if not refs:
        raise InvalidInput("Name at least one record to log on.", {"records": ["empty"]})
    unique = _dedupe(refs)
    for ref in unique:
        get_record(ctx.session, ctx.org_id, ref)
    return unique


def fingerprint_message_id(email: EmailData) -> str:
    """A stable stand-in for a missing Message-ID, so that logging stays idempotent.

    Two emails that differ only in their attachments (the March and the April invoice) are
    two emails: each attachment's name and content count. An email without attachments
    keeps the fingerprint it always had, so logging it again still finds it.
    """
    parts = [
        email.from_email or "",
        email.subject,
        email.date.isoformat() if email.date else "",
        email.body_text,
    ]
    parts += [f"{a.filename}:{hashlib.sha256(a.content).hexdigest()}" for a in email.attachments]
    material = "\x1f".join(parts)
    return f"<{hashlib.sha256(material.encode()).hexdigest()[:40]}@fingerprint.connector>"


def _find_email_activity(ctx: Ctx, message_id: str) -> Activity | None:
    return ctx.session.scalar(
        select(Activity).where(
            Activity.organization_id == ctx.org_id, Activity.message_id == message_id
        )
    )


def _new_email_activity(ctx: Ctx, email: EmailData, message_id: str) -> Activity:
    total = sum(a.size for a in email.attachments)
    over_cap = total > ctx.settings.attachment_cap_bytes
    return Activity(
        organization_id=ctx.org_id,
        kind=ActivityKind.EMAIL,
        author_id=ctx.user.id,
        occurred_at=email.date.astimezone(dt.UTC) if email.date else utcnow(),
        subject=email.subject,
        message_id=message_id,
        from_address=email.from_header,
        to_addresses=list(email.to),
        cc_addresses=list(email.cc),
        body_html=email.body_html,
        body_text=email.body_text,
        attachments=[]
        if over_cap
        else [
            Attachment(
                filename=a.filename,
                content_type=a.content_type,
                size=a.size,
                content_id=a.content_id,
                content=a.content,
            )
            for a in email.attachments
        ],
        omitted_attachments=[
            {"filename": a.filename, "content_type": a.content_type, "size": a.size}
            for a in email.attachments
        ]
        if over_cap
        else [],
    )


def log_email(ctx: Ctx, email: EmailData, refs: Sequence[RecordRef]) -> LogResult:
    """Log the email on each record; the same Message-ID is one activity, linked once per record.

    Everything is checked before anything is written, and the caller commits once,
    so a failure leaves nothing half-written.
    """
    records = check_records(ctx, refs)
    message_id = email.message_id or fingerprint_message_id(email)
    activity = _find_email_activity(ctx, message_id)
    created = False
    if activity is None:
        candidate = _new_email_activity(ctx, email, message_id)
        try:
            # A savepoint, so that losing a race with a concurrent log of the same
            # email rolls back only this insert, and we link the winner's activity.
            with ctx.session.begin_nested():
                ctx.session.add(candidate)
                ctx.session.flush()
            activity, created = candidate, True
        except IntegrityError:
            activity = _find_email_activity(ctx, message_id)
            if activity is None:
                raise
    return _link(ctx, activity, records, created)


def _link(ctx: Ctx, activity: Activity, records: list[RecordRef], created: bool) -> LogResult:
    existing = {RecordRef(link.record_type, link.record_id) for link in activity.links}
    newly: list[RecordRef] = []
    if created:
        # A new activity: no one else can have linked it yet.
        newly = [r for r in records if r not in existing]
        activity.links.extend(
            ActivityLink(organization_id=ctx.org_id, record_type=r.type, record_id=r.id)
            for r in newly
        )
        ctx.session.flush()
    else:
        for ref in (r for r in records if r not in existing):
            if _insert_link(ctx, activity, ref):
                newly.append(ref)
        # The links others made while we inserted ours are in the database, not in memory.
        ctx.session.expire(activity, ["links"])
    return LogResult(activity, created, newly, [r for r in records if r not in newly])


def _insert_link(ctx: Ctx, activity: Activity, ref: RecordRef) -> bool:
    """Link a logged email to one more record; False when a concurrent request just did.

    Several clients adding the same record to the same email at once race on the link's
    unique constraint: the losers' inserts roll back to a savepoint, and the record is
    linked all the same (insert-or-ignore, portable across SQLite and PostgreSQL).
    """
    link = ActivityLink(
        organization_id=ctx.org_id, activity_id=activity.id, record_type=ref.type, record_id=ref.id
    )
    try:
        with ctx.session.begin_nested():
            ctx.session.add(link)
            ctx.session.flush()
    except IntegrityError:
        return False
    return True


def add_note(ctx: Ctx, body: str, refs: Sequence[RecordRef], subject: str = "") -> Activity:
    records = check_records(ctx, refs)
    if not body.strip():
        raise InvalidInput("A note needs some text.", {"body": ["empty"]})
    activity = Activity(
        organization_id=ctx.org_id,
        kind=ActivityKind.NOTE,
        author_id=ctx.user.id,
        subject=subject,
        body_text=body,
        body_html=sanitize_html(text_to_html(body)),
    )
    ctx.session.add(activity)
    return _link(ctx, activity, records, created=True).activity


def recent_activities(ctx: Ctx, ref: RecordRef, limit: int = 10) -> list[Activity]:
    query = (
        select(Activity)
        .join(ActivityLink, ActivityLink.activity_id == Activity.id)
        .where(
            ActivityLink.organization_id == ctx.org_id,
            ActivityLink.record_type == ref.type,
            ActivityLink.record_id == ref.id,
        )
        .order_by(Activity.occurred_at.desc(), Activity.id.desc())
        .limit(limit)
    )
    return list(ctx.session.scalars(query))


def get_activity(ctx: Ctx, activity_id: int) -> Activity:
    activity = ctx.session.get(Activity, activity_id)
    if activity is None or activity.organization_id != ctx.org_id:
        raise NotFound(f"There is no activity with id {activity_id}.")
    return activity


def find_logged_email(ctx: Ctx, message_id: str) -> Activity | None:
    return _find_email_activity(ctx, message_id.strip())


def get_attachment(ctx: Ctx, attachment_id: int) -> Attachment:
    attachment = ctx.session.get(Attachment, attachment_id)
    if attachment is None or attachment.activity.organization_id != ctx.org_id:
        raise NotFound(f"There is no attachment with id {attachment_id}.")
    return attachment

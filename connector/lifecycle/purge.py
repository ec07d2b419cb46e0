"""Removing archived records for good, once they have been archived long enough.

A purged record takes along its addresses or domains, its history, the tasks about it, and
the emails and notes logged on it alone (those also on another record stay there).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from connector.activities.models import Activity, ActivityLink
from connector.errors import InvalidInput
from connector.orm import utcnow
from connector.records.models import (
    Company,
    Contact,
    Lead,
    RecordChange,
    RecordType,
    Task,
    Ticket,
)

_AGE = re.compile(r"^\s*(\d{1,5})\s*([hdw])\s*$", re.IGNORECASE)
_UNIT_HOURS = {"h": 1, "d": 24, "w": 24 * 7}

# Leads and tickets first: they point at contacts and companies; contacts point at companies.
PurgedModel = type[Lead] | type[Ticket] | type[Contact] | type[Company]
PURGE_ORDER: tuple[tuple[RecordType, PurgedModel], ...] = (
    (RecordType.LEAD, Lead),
    (RecordType.TICKET, Ticket),
    (RecordType.CONTACT, Contact),
    (RecordType.COMPANY, Company),
)


def parse_age(text: str) -> dt.timedelta:
    """ "12h", "30d", "2w": how long a record must have been archived to be purged."""
    match = _AGE.match(text)
    if match is None:
        raise InvalidInput(
            f"{text!r} is not an age: write a number and h, d or w (12h, 30d, 2w).",
            {"older_than": ["invalid"]},
        )
    return dt.timedelta(hours=int(match.group(1)) * _UNIT_HOURS[match.group(2).lower()])


@dataclass
class PurgeResult:
    records: dict[str, int] = field(default_factory=dict)
    activities: int = 0

    @property
    def total(self) -> int:
        return sum(self.records.values())


def purge_archived(
    session: Session, older_than: dt.timedelta, *, now: dt.datetime | None = None
) -> PurgeResult:
    """Remove the records of every organization archived before now - older_than.

    The caller commits: one transaction, so that a failure leaves everything as it was.
    """
    cutoff = (now or utcnow()) - older_than
    result = PurgeResult()
    for record_type, model in PURGE_ORDER:
        records: list[Lead | Ticket | Contact | Company] = list(
            session.scalars(
                select(model).where(model.archived_at.is_not(None), model.archived_at < cutoff)
            )
        )
        for record in records:
            result.activities += _forget(session, record_type, record)
            session.delete(record)
        session.flush()
        result.records[record_type.value] = len(records)
    return result


def _forget(
    session: Session, record_type: RecordType, record: Lead | Ticket | Contact | Company
) -> int:
    """Remove what only this record holds; unlink it from what others hold. Answers how
    many activities were removed with it."""
    org_id, record_id = record.organization_id, record.id
    about = (
        (ActivityLink.organization_id == org_id)
        & (ActivityLink.record_type == record_type)
        & (ActivityLink.record_id == record_id)
    )
    activity_ids = list(session.scalars(select(ActivityLink.activity_id).where(about)))
    session.execute(delete(ActivityLink).where(about))
    removed = 0
    if activity_ids:
        alone = select(Activity).where(
            Activity.id.in_(activity_ids),
            ~exists().where(ActivityLink.activity_id == Activity.id),
        )
        for activity in session.scalars(alone):
            session.delete(activity)
            removed += 1
    session.execute(
        delete(Task).where(
            Task.organization_id == org_id,
            Task.record_type == record_type,
            Task.record_id == record_id,
        )
    )
    session.execute(
        delete(RecordChange).where(
            RecordChange.organization_id == org_id,
            RecordChange.record_type == record_type,
            RecordChange.record_id == record_id,
        )
    )
    # What points at it keeps its own place (the database does the same with SET NULL;
    # done here too, so that the objects in the session agree), and its version and
    # updated_at move on, so that a client syncing with updated_since sees the change.
    if record_type is RecordType.CONTACT:
        for model in (Lead, Ticket):
            session.execute(
                update(model)
                .where(model.contact_id == record_id)
                .values(contact_id=None, version=model.version + 1, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
    if record_type is RecordType.COMPANY:
        for referring in (Lead, Ticket, Contact):
            session.execute(
                update(referring)
                .where(referring.company_id == record_id)
                .values(company_id=None, version=referring.version + 1, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
    return removed

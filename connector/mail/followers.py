"""Who follows a record: the queries every part of following shares (the API, relays,
messages from the record, the unfollow link).

The record's owner follows it without being added: `ensure_owner` makes their row the
first time the followers are read or mail is relayed, unless a row for them exists (an
owner who unfollowed stays unfollowed).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connector.mail.models import Follower
from connector.records.models import Company, Contact, Lead, RecordType, Ticket
from connector.records.refs import RecordRef

_MODELS: dict[RecordType, type[Contact] | type[Company] | type[Lead] | type[Ticket]] = {
    RecordType.CONTACT: Contact,
    RecordType.COMPANY: Company,
    RecordType.LEAD: Lead,
    RecordType.TICKET: Ticket,
}


def _row(
    session: Session, ref: RecordRef, *, user_id: int | None = None, contact_id: int | None = None
) -> Follower | None:
    query = select(Follower).where(Follower.record_type == ref.type, Follower.record_id == ref.id)
    if user_id is not None:
        query = query.where(Follower.user_id == user_id)
    else:
        query = query.where(Follower.contact_id == contact_id)
    return session.scalar(query)


def _insert(session: Session, row: Follower) -> Follower | None:
    """Insert-or-ignore (a concurrent follow of the same person wins): None when it lost."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return None
    return row


def ensure_owner(session: Session, org_id: int, ref: RecordRef) -> None:
    """The record's owner follows it, unless they have a row already (even unfollowed)."""
    model = _MODELS[ref.type]
    owner_id = session.scalar(
        select(model.owner_id).where(model.id == ref.id, model.organization_id == org_id)
    )
    if owner_id is None:
        return
    if _row(session, ref, user_id=owner_id) is None:
        _insert(
            session,
            Follower(
                organization_id=org_id,
                record_type=ref.type,
                record_id=ref.id,
                user_id=owner_id,
            ),
        )


def follow(
    session: Session,
    org_id: int,
    ref: RecordRef,
    *,
    user_id: int | None = None,
    contact_id: int | None = None,
) -> Follower:
    """Make a user or a contact (checked by the caller to be of the organization) follow the
    record; following again is the same row, active again."""
    if (user_id is None) == (contact_id is None):
        raise ValueError("a follower is a user or a contact")
    existing = _row(session, ref, user_id=user_id, contact_id=contact_id)
    if existing is None:
        inserted = _insert(
            session,
            Follower(
                organization_id=org_id,
                record_type=ref.type,
                record_id=ref.id,
                user_id=user_id,
                contact_id=contact_id,
            ),
        )
        existing = inserted or _row(session, ref, user_id=user_id, contact_id=contact_id)
        assert existing is not None
    existing.active = True
    session.flush()
    return existing


def unfollow(session: Session, follower: Follower) -> None:
    """Kept, inactive: the owner who unfollowed is not made a follower again."""
    follower.active = False
    session.flush()


def followers(session: Session, org_id: int, ref: RecordRef) -> list[Follower]:
    """The record's active followers (its owner among them), oldest first."""
    ensure_owner(session, org_id, ref)
    return list(
        session.scalars(
            select(Follower)
            .where(
                Follower.organization_id == org_id,
                Follower.record_type == ref.type,
                Follower.record_id == ref.id,
                Follower.active.is_(True),
            )
            .order_by(Follower.id)
        )
    )

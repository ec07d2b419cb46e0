"""Following a record, as a member of its organization sees it: who follows, adding and
removing followers (the API), and the followers a record's card shows.

The shared queries are connector.mail.followers'; this adds what a caller needs around
them: the record must be one of the caller's organization (404 otherwise, archived ones
too), the person must be a user or a contact of it (400 otherwise), and each follower is
given as the API's Follower object.

Any member may add or remove anyone on a record of their organization, as Odoo's chatter
lets them: following only decides who gets mail about the record, which the team shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from connector.addresses import normalize_email
from connector.errors import InvalidInput, NotFound
from connector.mail import followers as shared
from connector.mail.models import Follower
from connector.mail.numbers import record_number
from connector.mail.unfollow_links import follower_of_token
from connector.orgs.context import Ctx
from connector.orgs.models import User
from connector.records.models import Contact, Lead, Ticket
from connector.records.refs import RecordRef
from connector.records.service import RECORD_MODELS, Record, contact_for_email, get_record


def follower_summary(follower: Follower, owner_id: int | None, me_id: int | None) -> dict[str, Any]:
    """A follower as the API gives it (the Follower object of the API)."""
    if follower.user is not None:
        return _person(
            follower.id,
            user=follower.user,
            owner_id=owner_id,
            me_id=me_id,
        )
    assert follower.contact is not None  # a row is a user's or a contact's (a CHECK)
    return _person(follower.id, contact=follower.contact, owner_id=owner_id, me_id=me_id)


def _person(
    follower_id: int | None,
    *,
    user: User | None = None,
    contact: Contact | None = None,
    owner_id: int | None,
    me_id: int | None,
) -> dict[str, Any]:
    if user is not None:
        return {
            "id": follower_id,
            "kind": "user",
            "name": user.name or user.email,
            "email": user.email,
            "user_id": user.id,
            "contact_id": None,
            "is_owner": user.id == owner_id,
            "is_me": user.id == me_id,
        }
    assert contact is not None
    return {
        "id": follower_id,
        "kind": "contact",
        # A contact may have no name (made from a bare address): the address stands in.
        "name": contact.name or (contact.emails[0].email if contact.emails else ""),
        "email": contact.emails[0].email if contact.emails else None,
        "user_id": None,
        "contact_id": contact.id,
        "is_owner": False,
        "is_me": False,
    }


# The API ------------------------------------------------------------------------------


def record_followers(ctx: Ctx, ref: RecordRef) -> list[dict[str, Any]]:
    """The record's followers, oldest first, its owner among them unless they unfollowed.

    Writes the owner's row the first time (connector.mail.followers.ensure_owner), so that
    the owner has an id to be removed by: the caller commits."""
    record = get_record(ctx.session, ctx.org_id, ref)
    return [
        follower_summary(f, record.owner_id, ctx.user.id)
        for f in shared.followers(ctx.session, ctx.org_id, ref)
        if still_here(f)
    ]


def still_here(follower: Follower) -> bool:
    """A user who left (deactivated) is no follower to show: nothing is relayed to them,
    and they cannot be added again. Their row stays, for if they come back."""
    return follower.user is None or follower.user.active


@dataclass(frozen=True)
class Followed:
    """A follow: the follower, and whether they followed already (nothing changed)."""

    follower: dict[str, Any]
    already: bool


def add_follower(
    ctx: Ctx,
    ref: RecordRef,
    *,
    user_id: int | None = None,
    contact_id: int | None = None,
    email: str | None = None,
) -> Followed:
    """Make a user or a contact of the organization follow the record (exactly one of
    the three names them). Following again changes nothing; someone who had unfollowed
    follows again. The caller commits."""
    record = get_record(ctx.session, ctx.org_id, ref)
    if sum(value is not None for value in (user_id, contact_id, email)) != 1:
        raise InvalidInput("Give exactly one of 'user_id', 'contact_id' or 'email'.")
    if email is not None:
        user_id, contact_id = _person_of_email(ctx, email)
    elif user_id is not None:
        _check_user(ctx, user_id)
    else:
        assert contact_id is not None
        _check_contact(ctx, contact_id)
    # The owner follows without being added: their row first, so that adding someone else
    # does not make them the oldest follower, and adding the owner finds it.
    shared.ensure_owner(ctx.session, ctx.org_id, ref)
    before = _row(ctx.session, ref, user_id=user_id, contact_id=contact_id)
    already = before is not None and before.active
    follower = shared.follow(ctx.session, ctx.org_id, ref, user_id=user_id, contact_id=contact_id)
    return Followed(follower_summary(follower, record.owner_id, ctx.user.id), already)


def remove_follower(ctx: Ctx, ref: RecordRef, follower_id: int) -> None:
    """Stop a follower of the record following it (the row stays, inactive, so that an
    owner who is removed is not made a follower again). Removing someone who no longer
    follows changes nothing. The caller commits."""
    get_record(ctx.session, ctx.org_id, ref)
    follower = ctx.session.get(Follower, follower_id)
    if (
        follower is None
        or follower.organization_id != ctx.org_id
        or follower.record_type != ref.type
        or follower.record_id != ref.id
    ):
        raise NotFound(f"The {ref.type.value} {ref.id} has no follower with id {follower_id}.")
    shared.unfollow(ctx.session, follower)


def _row(
    session: Session, ref: RecordRef, *, user_id: int | None, contact_id: int | None
) -> Follower | None:
    query = select(Follower).where(Follower.record_type == ref.type, Follower.record_id == ref.id)
    if user_id is not None:
        return session.scalar(query.where(Follower.user_id == user_id))
    return session.scalar(query.where(Follower.contact_id == contact_id))


def _check_user(ctx: Ctx, user_id: int, field: str = "user_id") -> None:
    user = ctx.session.get(User, user_id)
    if user is None or user.organization_id != ctx.org_id:
        raise InvalidInput(
            f"There is no user with id {user_id} in your organization.",
            {field: ["unknown user"]},
        )
    if not user.active:
        raise InvalidInput(
            f"{user.name or user.email} has left the organization (deactivated) and "
            "cannot follow records.",
            {field: ["deactivated user"]},
        )


def _check_contact(ctx: Ctx, contact_id: int) -> None:
    contact = ctx.session.get(Contact, contact_id)
    if contact is None or contact.organization_id != ctx.org_id or contact.archived_at:
        raise InvalidInput(
            f"There is no contact with id {contact_id} in your organization.",
            {"contact_id": ["unknown contact"]},
        )


def _person_of_email(ctx: Ctx, raw: str) -> tuple[int | None, int | None]:
    """(user_id, None) or (None, contact_id) of an address. A user of the organization
    comes first: a colleague who is also kept as a contact follows as a member, and gets
    the relays of what comes in."""
    address = normalize_email(raw)
    if address is None:
        raise InvalidInput(f"{raw!r} is not an email address.", {"email": ["not an address"]})
    user = ctx.session.scalar(select(User).where(User.email == address))
    if user is not None and user.organization_id == ctx.org_id:
        _check_user(ctx, user.id, field="email")
        return user.id, None
    contact = contact_for_email(ctx.session, ctx.org_id, address)
    if contact is not None:
        return None, contact.id
    raise InvalidInput(
        f"{address} is the address of no user and no contact of your organization: "
        "create the contact first.",
        {"email": ["unknown address"]},
    )


# Cards --------------------------------------------------------------------------------


def card_followers(
    session: Session, org_id: int, ref: RecordRef, owner_id: int | None, me_id: int | None
) -> list[dict[str, Any]]:
    """The followers a record's card shows: what `record_followers` gives, without writing.

    Cards are read on paths that never commit (lookups, GETs, cached answers), so the
    owner's row is not made here: an owner who has no row yet is shown following, with
    `"id": null`, as the last one (where their row lands when it is made: the
    followers API, a follow, or mail relayed from the record makes it). One query, users
    and contacts joined; the owner's rows, even inactive, come too, to tell an owner who
    unfollowed (not shown) from one who never had a row (shown)."""
    wanted: ColumnElement[bool] = Follower.active.is_(True)
    if owner_id is not None:
        wanted = or_(wanted, Follower.user_id == owner_id)
    query = (
        select(Follower)
        .where(
            Follower.organization_id == org_id,
            Follower.record_type == ref.type,
            Follower.record_id == ref.id,
            wanted,
        )
        .order_by(Follower.id)
    )
    rows = list(session.scalars(query))
    shown = [follower_summary(f, owner_id, me_id) for f in rows if f.active and still_here(f)]
    if owner_id is not None and not any(f.user_id == owner_id for f in rows):
        owner = session.get(User, owner_id)
        if owner is not None and owner.active:
            shown.append(_person(None, user=owner, owner_id=owner_id, me_id=me_id))
    return shown


# The unfollow link ------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkFollower:
    """The follower an unfollow link names, and what they follow as people read it."""

    follower: Follower
    label: str


def link_follower(session: Session, secret_key: str, token: str) -> LinkFollower | None:
    """Who a link from relayed mail (connector.mail.unfollow_links) lets stop following;
    None when it is not one of ours, or its follower or record is gone (purged).

    An archived record can still be left: its mail may yet be read."""
    follower_id = follower_of_token(secret_key, token)
    if follower_id is None:
        return None
    follower = session.get(Follower, follower_id)
    if follower is None:
        return None
    # The column is a plain string: made a RecordType again here.
    ref = RecordRef.of(follower.record_type, follower.record_id)
    # mypy joins the models' types to Base; RECORD_MODELS holds the four record models.
    record = cast(Record | None, session.get(RECORD_MODELS[ref.type], ref.id))
    if record is None or record.organization_id != follower.organization_id:
        return None
    return LinkFollower(follower, record_label(ref, record))


def record_label(ref: RecordRef, record: Record) -> str:
    """'L-12 "Quote for 50 seats"', or 'the contact "Hank Scorpio"' for a record that
    has no number."""
    if isinstance(record, Lead):
        title = record.title
    elif isinstance(record, Ticket):
        title = record.subject
    else:
        title = record.name
    number = record_number(ref)
    return f'{number} "{title}"' if number else f'the {ref.type.value} "{title}"'


def unfollow_by_link(session: Session, found: LinkFollower) -> None:
    """The link's follower stops following (the caller commits); again changes nothing."""
    if found.follower.active:
        shared.unfollow(session, found.follower)

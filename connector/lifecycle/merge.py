"""Merging duplicates: one contact (or company) takes over everything of another.

What the merged record had (addresses or domains, logged emails and notes, leads, tickets,
tasks, and the fields the survivor leaves blank) moves to the survivor, then the merged
record is removed: its id answers 404, and a lookup of its addresses finds the survivor.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from connector.activities.models import ActivityLink
from connector.errors import InvalidInput, PreconditionFailed
from connector.orgs.context import Ctx
from connector.records.editing import ExpectedVersion, RecordEdit, record_label, version_matches
from connector.records.history import forget_history
from connector.records.models import (
    Company,
    Contact,
    Lead,
    RecordType,
    Task,
    Ticket,
    name_key,
)
from connector.records.refs import RecordRef
from connector.records.service import get_record

DUPLICATES_LIMIT = 5


def _move_links(ctx: Ctx, merged: RecordRef, survivor: RecordRef) -> None:
    """The merged record's emails and notes, on the survivor (once each)."""
    have = set(
        ctx.session.scalars(
            select(ActivityLink.activity_id).where(
                ActivityLink.organization_id == ctx.org_id,
                ActivityLink.record_type == survivor.type,
                ActivityLink.record_id == survivor.id,
            )
        )
    )
    links = ctx.session.scalars(
        select(ActivityLink).where(
            ActivityLink.organization_id == ctx.org_id,
            ActivityLink.record_type == merged.type,
            ActivityLink.record_id == merged.id,
        )
    )
    for link in links:
        if link.activity_id in have:
            ctx.session.delete(link)
        else:
            link.record_id = survivor.id


def _move_tasks(ctx: Ctx, merged: RecordRef, survivor: RecordRef) -> None:
    tasks = ctx.session.scalars(
        select(Task).where(
            Task.organization_id == ctx.org_id,
            Task.record_type == merged.type,
            Task.record_id == merged.id,
        )
    )
    for task in tasks:
        task.record_id = survivor.id


def _reassign(
    ctx: Ctx, model: type[Lead | Ticket | Contact], column: str, old: int, new: int
) -> None:
    """Point the leads, tickets (or contacts) of the merged record at the survivor, archived
    ones too (they may be restored), each change in that record's own history. Only the
    one column changes: nothing else of those records is checked again."""
    rows: list[Lead | Ticket | Contact] = list(
        ctx.session.scalars(
            select(model).where(model.organization_id == ctx.org_id, getattr(model, column) == old)
        )
    )
    pointed_at = RecordType.CONTACT if column == "contact_id" else RecordType.COMPANY
    for row in rows:
        edit = RecordEdit(ctx, row)
        edit.set(column, new, label=record_label(ctx, pointed_at))
        edit.finish()


def _fill_blanks(edit: RecordEdit, survivor: Any, merged: Any, fields: tuple[str, ...]) -> None:
    for field in fields:
        if getattr(survivor, field) in (None, "") and getattr(merged, field) not in (None, ""):
            edit.set(field, getattr(merged, field))


def _load_pair(
    ctx: Ctx, record_type: RecordType, survivor_id: int, merged_id: int
) -> tuple[Any, Any]:
    if survivor_id == merged_id:
        raise InvalidInput(
            f"A {record_type.value} cannot be merged into itself.", {"from": ["same id"]}
        )
    survivor = get_record(ctx.session, ctx.org_id, RecordRef(record_type, survivor_id))
    merged = get_record(ctx.session, ctx.org_id, RecordRef(record_type, merged_id))
    return survivor, merged


def _finish(
    ctx: Ctx,
    edit: RecordEdit,
    survivor: Contact | Company,
    merged: Any,
    expected_version: ExpectedVersion,
) -> None:
    merged_ref = RecordRef(edit.ref.type, merged.id)
    edit.set(
        "merged",
        edit.ref.id,
        before=merged.id,
        assign=False,
        label=lambda v: f"{merged.name} (#{merged.id})" if v == merged.id else survivor.name,
    )
    forget_history(ctx, merged_ref)
    ctx.session.delete(merged)
    try:
        ctx.session.flush()
    except StaleDataError as exc:
        # The duplicate was changed while it was being merged (its DELETE is conditional
        # on the version read, as every UPDATE is).
        raise PreconditionFailed(
            f"The {merged_ref.type.value} to merge (#{merged_ref.id}) was changed just now. "
            "Nothing was merged: look at it again and retry.",
            {"from": [str(merged_ref.id)]},
        ) from exc
    edit.finish()


def _merge(
    ctx: Ctx,
    record_type: RecordType,
    ids: tuple[int, int],
    expected_version: ExpectedVersion,
    blanks: tuple[str, ...],
    pointing: tuple[tuple[type[Lead | Ticket | Contact], str], ...],
) -> Any:
    survivor, merged = _load_pair(ctx, record_type, *ids)
    version_matches(survivor, expected_version)
    edit = RecordEdit(ctx, survivor)
    # A contact's addresses or a company's domains.
    field, value_of = (
        ("emails", "email") if record_type is RecordType.CONTACT else ("domains", "domain")
    )
    before = [getattr(item, value_of) for item in getattr(survivor, field)]
    for item in list(getattr(merged, field)):
        getattr(survivor, field).append(item)  # moves it: the backref takes it off the merged one
    ctx.session.flush()
    after = [getattr(item, value_of) for item in getattr(survivor, field)]
    edit.set(field, after, before=before, assign=False)
    _fill_blanks(edit, survivor, merged, blanks)
    merged_ref = RecordRef(record_type, merged.id)
    _move_links(ctx, merged_ref, edit.ref)
    _move_tasks(ctx, merged_ref, edit.ref)
    for model, column in pointing:
        _reassign(ctx, model, column, merged.id, survivor.id)
    _finish(ctx, edit, survivor, merged, expected_version)
    return survivor


def merge_contacts(
    ctx: Ctx, survivor_id: int, merged_id: int, expected_version: ExpectedVersion = None
) -> Contact:
    survivor: Contact = _merge(
        ctx,
        RecordType.CONTACT,
        (survivor_id, merged_id),
        expected_version,
        ("phone", "job_title", "company_id", "owner_id"),
        ((Lead, "contact_id"), (Ticket, "contact_id")),
    )
    return survivor


def merge_companies(
    ctx: Ctx, survivor_id: int, merged_id: int, expected_version: ExpectedVersion = None
) -> Company:
    survivor: Company = _merge(
        ctx,
        RecordType.COMPANY,
        (survivor_id, merged_id),
        expected_version,
        ("website", "phone", "owner_id"),
        ((Contact, "company_id"), (Lead, "company_id"), (Ticket, "company_id")),
    )
    return survivor


def possible_duplicates(ctx: Ctx, contact: Contact) -> list[Contact]:
    """Other contacts with the same name (any case) and the same company, or both none."""
    query = (
        select(Contact)
        .where(
            Contact.organization_id == ctx.org_id,
            Contact.id != contact.id,
            Contact.archived_at.is_(None),
            Contact.name_key == name_key(contact.name),
            Contact.company_id.is_(None)
            if contact.company_id is None
            else Contact.company_id == contact.company_id,
        )
        .order_by(Contact.id)
        .limit(DUPLICATES_LIMIT)
    )
    return list(ctx.session.scalars(query))

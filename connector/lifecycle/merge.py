"""Merging duplicates: one contact (or company) takes over everything of another.

What the merged record had (addresses or domains, logged emails and notes, leads, tickets,
tasks, and the fields the survivor leaves blank) moves to the survivor, then the merged
record is removed: its id answers 404, and a lookup of its addresses finds the survivor.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from connector.activities.models import ActivityLink
from connector.errors import InvalidInput
from connector.orgs.context import Ctx
from connector.records.editing import RecordEdit, update_record, version_matches
from connector.records.history import forget_history
from connector.records.models import Company, Contact, Lead, RecordType, Task, Ticket
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
    """Point the leads, tickets (or contacts) of the merged record at the survivor, each
    change in that record's own history."""
    rows = ctx.session.scalars(
        select(model).where(model.organization_id == ctx.org_id, getattr(model, column) == old)
    )
    record_type = {Lead: RecordType.LEAD, Ticket: RecordType.TICKET, Contact: RecordType.CONTACT}[
        model
    ]
    row: Any
    for row in list(rows):
        data: dict[str, Any] = {column: new}
        if model is not Contact and column == "contact_id":
            data["company_id"] = row.company_id  # the lead keeps its company
        update_record(ctx, RecordRef(record_type, row.id), data)


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
    expected_version: int | None,
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
    ctx.session.flush()
    edit.finish(expected_version)


def _merge(
    ctx: Ctx,
    record_type: RecordType,
    ids: tuple[int, int],
    expected_version: int | None,
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
    ctx: Ctx, survivor_id: int, merged_id: int, expected_version: int | None = None
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
    ctx: Ctx, survivor_id: int, merged_id: int, expected_version: int | None = None
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
            func.lower(Contact.name) == contact.name.lower(),
            Contact.company_id.is_(None)
            if contact.company_id is None
            else Contact.company_id == contact.company_id,
        )
        .order_by(Contact.id)
        .limit(DUPLICATES_LIMIT)
    )
    return list(ctx.session.scalars(query))

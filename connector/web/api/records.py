"""Companies, contacts, leads, tickets and tasks: create, read, list, change, archive, merge."""

from __future__ import annotations

import re
from typing import Any

from flask import current_app, request
from flask.views import MethodView
from marshmallow import Schema, fields

from connector.activities import intake
from connector.audit import service as audit
from connector.errors import InvalidInput
from connector.lifecycle.merge import merge_companies, merge_contacts
from connector.lookup import view_models as vm
from connector.lookup.service import record_card
from connector.lookup.view_models import task_summary
from connector.orgs.context import Ctx
from connector.records import editing, listing, service
from connector.records.models import RecordType
from connector.records.refs import RecordRef
from connector.schemas import cards as out
from connector.schemas import records as schemas
from connector.web.api.base import Blueprint, ErrorSchema
from connector.web.auth import login_required
from connector.web.handlers import service_ctx
from connector.web.record_links import record_link

blp = Blueprint("records", __name__, description="Companies, contacts, leads, tickets, tasks")


def _created(ref: RecordRef) -> dict[str, Any]:
    """Commit, then answer with the new record's card (as the GET would)."""
    ctx = service_ctx()
    ctx.session.commit()
    return record_card(ctx, ref)


def _audit(ctx: Ctx, action: str, ref: RecordRef, detail: dict[str, Any] | None = None) -> None:
    """Into the audit log, committed with the change itself."""
    audit.record(
        ctx.session,
        org_id=ctx.org_id,
        actor=ctx.user,
        action=action,
        target=f"{ref.type.value}:{ref.id}",
        detail=detail,
    )


def _etag(version: int) -> str:
    return f'"{version}"'


def _expected_version() -> frozenset[int] | None:
    """The versions an If-Match names (any one matching will do), or None when there is none
    (the write goes through).

    If-Match is a list of entity tags (RFC 9110): `"3"`, also `W/"3"` or a bare 3 from a
    lenient client; `*` matches any existing record.
    """
    header = request.headers.get("If-Match")
    if header is None or header.strip() in ("", "*"):
        return None
    versions: set[int] = set()
    for tag in header.split(","):
        text = tag.strip().removeprefix("W/").strip().strip('"')
        if VERSION_TAG.fullmatch(text) is None:
            raise InvalidInput(
                'If-Match names a version this API gave in its ETag header (for example "3").',
                {"If-Match": [header[:100]]},
            )
        versions.add(int(text))
    return frozenset(versions)


# ASCII digits only (str.isdigit also takes "²"), as many as a version can have.
VERSION_TAG = re.compile(r"[0-9]{1,9}", re.ASCII)


def _card_with_etag(ctx: Ctx, ref: RecordRef) -> tuple[dict[str, Any], int, dict[str, str]]:
    card = record_card(ctx, ref)
    return card, 200, {"ETag": _etag(card[ref.type.value]["version"])}


IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": False,
    "schema": {"type": "string"},
    "description": "The ETag of the version read: refused with 412 if the record changed since",
}
ETAG_HEADER = {"ETag": {"schema": {"type": "string"}, "description": "The record's version"}}
LIST_ITEMS: dict[RecordType, type] = {
    RecordType.CONTACT: out.ContactOut,
    RecordType.COMPANY: out.CompanyOut,
    RecordType.LEAD: out.LeadOut,
    RecordType.TICKET: out.TicketOut,
}
SUMMARIES: dict[RecordType, Any] = {
    RecordType.CONTACT: vm.contact_summary,
    RecordType.COMPANY: vm.company_summary,
    RecordType.LEAD: vm.lead_summary,
    RecordType.TICKET: vm.ticket_summary,
}


def _card_route(
    record_type: RecordType,
    plural: str,
    create_schema: type,
    patch_schema: type,
    create: Any,
) -> None:
    kind = record_type.value
    list_schema = type(
        f"{kind.capitalize()}ListOut",
        (Schema,),
        {
            "results": fields.List(fields.Nested(LIST_ITEMS[record_type])),
            "next_cursor": fields.String(
                allow_none=True, metadata={"description": "null on the last page"}
            ),
        },
    )

    @blp.route(f"/{plural}", endpoint=f"{plural}")
    class Collection(MethodView):
        decorators = [login_required]

        @blp.doc(summary=f"Create a {kind}")
        @blp.arguments(create_schema)
        @blp.response(201, out.CardOut)
        def post(self, data: dict[str, Any]) -> dict[str, Any]:
            record = create(service_ctx(), data)
            return _created(RecordRef(record_type, record.id))

        @blp.doc(
            summary=f"List {plural}, filtered, oldest id first, a page at a time",
            description=f"Filters of this list: {', '.join(listing.FILTERS[record_type])}, "
            "updated_since, archived. Another one is a 400.",
        )
        @blp.arguments(schemas.ListArgs, location="query")
        @blp.response(200, list_schema)
        def get(self, args: dict[str, Any]) -> dict[str, Any]:
            options = {
                name: args.pop(name)
                for name in ("updated_since", "archived", "cursor", "limit")
                if name in args
            }
            page = listing.list_records(service_ctx(), record_type, args, **options)
            summary = SUMMARIES[record_type]
            return {"results": [summary(r) for r in page.records], "next_cursor": page.next_cursor}

    @blp.route(f"/{plural}/<int:record_id>", endpoint=f"{plural}-item")
    class Item(MethodView):
        decorators = [login_required]

        @blp.doc(summary=f"A {kind} with its related records, recent activity and history")
        @blp.response(200, out.CardOut, headers=ETAG_HEADER)
        def get(self, record_id: int) -> Any:
            return _card_with_etag(service_ctx(), RecordRef(record_type, record_id))

        @blp.doc(
            summary=f"Change a {kind}",
            description="Only the fields given change, each one into the history. With "
            "If-Match, a record changed since that version is refused (412) and nothing "
            "is written.",
            parameters=[IF_MATCH],
        )
        @blp.arguments(patch_schema)
        @blp.response(200, out.CardOut, headers=ETAG_HEADER)
        @blp.alt_response(412, schema=ErrorSchema, description="Changed since that version")
        def patch(self, data: dict[str, Any], record_id: int) -> Any:
            ctx = service_ctx()
            ref = RecordRef(record_type, record_id)
            editing.update_record(ctx, ref, data, _expected_version())
            ctx.session.commit()
            return _card_with_etag(ctx, ref)

        @blp.doc(
            summary=f"Archive a {kind}",
            description="Gone from lookups, searches, cards, lists and GET (404), kept with "
            "its emails: an admin can restore it until `connector purge` removes it.",
            parameters=[IF_MATCH],
        )
        @blp.response(204)
        @blp.alt_response(412, schema=ErrorSchema, description="Changed since that version")
        def delete(self, record_id: int) -> None:
            ctx = service_ctx()
            ref = RecordRef(record_type, record_id)
            editing.archive(ctx, ref, _expected_version())
            _audit(ctx, "record.archived", ref)
            ctx.session.commit()

    @blp.route(f"/{plural}/<int:record_id>/restore", endpoint=f"{plural}-restore")
    class Restore(MethodView):
        decorators = [login_required]

        @blp.doc(summary=f"Restore an archived {kind} (admins)", parameters=[IF_MATCH])
        @blp.response(200, out.CardOut, headers=ETAG_HEADER)
        @blp.alt_response(412, schema=ErrorSchema, description="Changed since that version")
        def post(self, record_id: int) -> Any:
            ctx = service_ctx()
            ref = RecordRef(record_type, record_id)
            editing.restore(ctx, ref, _expected_version())
            _audit(ctx, "record.restored", ref)
            ctx.session.commit()
            return _card_with_etag(ctx, ref)


_card_route(
    RecordType.COMPANY,
    "companies",
    schemas.CompanyIn,
    schemas.CompanyPatch,
    lambda ctx, data: service.create_company(ctx, **data),
)
_card_route(
    RecordType.CONTACT,
    "contacts",
    schemas.ContactIn,
    schemas.ContactPatch,
    lambda ctx, data: service.create_contact(ctx, **data),
)
_card_route(RecordType.LEAD, "leads", schemas.LeadIn, schemas.LeadPatch, intake.create_lead)
_card_route(
    RecordType.TICKET, "tickets", schemas.TicketIn, schemas.TicketPatch, intake.create_ticket
)


def _merge_route(record_type: RecordType, plural: str, merge: Any) -> None:
    kind = record_type.value

    @blp.route(f"/{plural}/<int:record_id>/merge", endpoint=f"{plural}-merge")
    class Merge(MethodView):
        decorators = [login_required]

        @blp.doc(
            summary=f"Merge a duplicate {kind} into this one",
            description="Its addresses or domains, emails, notes, leads, tickets and tasks "
            "move here, blank fields here take its values, and it is removed (its id "
            "answers 404).",
            parameters=[IF_MATCH],
        )
        @blp.arguments(schemas.MergeIn)
        @blp.response(200, out.CardOut, headers=ETAG_HEADER)
        @blp.alt_response(412, schema=ErrorSchema, description="Changed since that version")
        def post(self, data: dict[str, Any], record_id: int) -> Any:
            ctx = service_ctx()
            merge(ctx, record_id, data["from_"], _expected_version())
            ref = RecordRef(record_type, record_id)
            _audit(ctx, "record.merged", ref, {"from": f"{kind}:{data['from_']}"})
            ctx.session.commit()
            return _card_with_etag(ctx, RecordRef(record_type, record_id))


_merge_route(RecordType.CONTACT, "contacts", merge_contacts)
_merge_route(RecordType.COMPANY, "companies", merge_companies)


@blp.route("/tasks")
class Tasks(MethodView):
    decorators = [login_required]

    @blp.arguments(schemas.TaskListArgs, location="query")
    @blp.response(200, out.TaskOut(many=True))
    def get(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        """Open tasks, the caller's by default, soonest due first."""
        ctx = service_ctx()
        assignee = args["assignee"]
        assignee_id = (
            ctx.user.id if assignee == "me" else None if assignee == "all" else int(assignee)
        )
        tasks = service.list_tasks(
            ctx,
            assignee_id=assignee_id,
            include_done=args["include_done"],
            due_before=args.get("due_before"),
            limit=args["limit"],
        )
        return [task_summary(t) for t in tasks]

    @blp.arguments(schemas.TaskIn)
    @blp.response(201, out.TaskOut)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create a task, optionally about a record."""
        ctx = service_ctx()
        record = data.pop("record", None)
        ref = RecordRef.from_json(record) if record else None
        task = service.create_task(ctx, record=ref, **data)
        ctx.session.commit()
        return task_summary(task)


@blp.route("/tasks/<int:task_id>")
class TaskItem(MethodView):
    decorators = [login_required]

    @blp.arguments(schemas.TaskPatch)
    @blp.response(200, out.TaskOut)
    def patch(self, changes: dict[str, Any], task_id: int) -> dict[str, Any]:
        """Change a task: mark it done, move its due date, rename or reassign it."""
        ctx = service_ctx()
        task = service.update_task(ctx, task_id, changes)
        ctx.session.commit()
        return task_summary(task)


@blp.route("/record-links")
class RecordLinks(MethodView):
    decorators = [login_required]

    @blp.arguments(out.RecordRefSchema)
    @blp.response(201, schemas.RecordLinkOut)
    def post(self, data: dict[str, Any]) -> dict[str, str]:
        """A signed link to the record's page, to open it from a mail client (valid 7 days)."""
        ctx = service_ctx()
        ref = RecordRef.from_json(data)
        service.get_record(ctx.session, ctx.org_id, ref)
        config = current_app.config
        return {"url": record_link(config["PUBLIC_URL"], config["SECRET_KEY"], ctx.user.id, ref)}

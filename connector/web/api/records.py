"""Create and read companies, contacts, leads, tickets and tasks."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView

from connector.activities import intake
from connector.lookup.service import record_card
from connector.lookup.view_models import task_summary
from connector.records import service
from connector.records.models import RecordType
from connector.records.refs import RecordRef
from connector.schemas import cards as out
from connector.schemas import records as schemas
from connector.web.api.base import Blueprint
from connector.web.auth import login_required
from connector.web.handlers import service_ctx
from connector.web.record_links import record_link

blp = Blueprint("records", __name__, description="Companies, contacts, leads, tickets, tasks")


def _created(ref: RecordRef) -> dict[str, Any]:
    """Commit, then answer with the new record's card (as the GET would)."""
    ctx = service_ctx()
    ctx.session.commit()
    return record_card(ctx, ref)


def _card_route(record_type: RecordType, plural: str, create_schema: type, create: Any) -> None:
    @blp.route(f"/{plural}", endpoint=f"{plural}")
    class Collection(MethodView):
        decorators = [login_required]

        @blp.doc(summary=f"Create a {record_type.value}")
        @blp.arguments(create_schema)
        @blp.response(201, out.CardOut)
        def post(self, data: dict[str, Any]) -> dict[str, Any]:
            record = create(service_ctx(), data)
            return _created(RecordRef(record_type, record.id))

    @blp.route(f"/{plural}/<int:record_id>", endpoint=f"{plural}-item")
    class Item(MethodView):
        decorators = [login_required]

        @blp.doc(summary=f"A {record_type.value} with its related records and recent activity")
        @blp.response(200, out.CardOut)
        def get(self, record_id: int) -> dict[str, Any]:
            return record_card(service_ctx(), RecordRef(record_type, record_id))


_card_route(
    RecordType.COMPANY,
    "companies",
    schemas.CompanyIn,
    lambda ctx, data: service.create_company(ctx, **data),
)
_card_route(
    RecordType.CONTACT,
    "contacts",
    schemas.ContactIn,
    lambda ctx, data: service.create_contact(ctx, **data),
)
_card_route(RecordType.LEAD, "leads", schemas.LeadIn, intake.create_lead)
_card_route(RecordType.TICKET, "tickets", schemas.TicketIn, intake.create_ticket)


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

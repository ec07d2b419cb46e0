"""Writing to the customer from a record: preview, send (queued, 202), and the list of what
was sent, failures included."""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app
from flask.views import MethodView

from connector.jobs import get_jobs
from connector.lookup import view_models as vm
from connector.mail import messages
from connector.records.models import RecordType
from connector.records.refs import RecordRef
from connector.schemas import messages as schemas
from connector.web.api.base import RECORD_PLURALS, Blueprint
from connector.web.auth import login_required
from connector.web.handlers import service_ctx

log = logging.getLogger(__name__)

blp = Blueprint("messages", __name__, description="Messages written from a record")

PLURALS = RECORD_PLURALS


def _draft(data: dict[str, Any]) -> messages.Draft:
    return messages.Draft(
        subject=data.get("subject"),
        body_text=data.get("body_text"),
        body_html=data.get("body_html"),
        template_id=data.get("template_id"),
    )


def _queue(outbound_id: int) -> None:
    """Hand the committed row to the worker. The message is saved either way: when the queue
    cannot be reached, the worker's sweep (connector.jobs.outbound.requeue_lost) sends it
    within minutes, so this is no error for the writer (who would send it twice)."""
    try:
        get_jobs(current_app).enqueue("send_outbound", outbound_id=outbound_id)
    except Exception:
        log.exception("Message %s saved but not queued: the worker's sweep sends it", outbound_id)


def _routes(record_type: RecordType, plural: str) -> None:
    kind = record_type.value

    @blp.route(f"/{plural}/<int:record_id>/messages/preview", endpoint=f"{plural}-message-preview")
    class Preview(MethodView):
        decorators = [login_required]

        @blp.doc(
            summary=f"Preview a message to the {kind}'s contact",
            description="What sending it would send: from, to, Reply-To, subject, bodies. "
            "Nothing is written.",
        )
        @blp.arguments(schemas.MessageIn)
        @blp.response(200, schemas.PreviewOut)
        def post(self, data: dict[str, Any], record_id: int) -> dict[str, Any]:
            ctx = service_ctx()
            return messages.preview(
                ctx,
                RecordRef(record_type, record_id),
                _draft(data),
                secret_key=current_app.config["SECRET_KEY"],
            )

    @blp.route(f"/{plural}/<int:record_id>/messages", endpoint=f"{plural}-messages")
    class Messages(MethodView):
        decorators = [login_required]

        @blp.doc(
            summary=f"Write to the {kind}'s contact",
            description="To the record's contact and its followers who are contacts, from "
            "the writer at the team address the record came in through, Reply-To the "
            "record's own address. Queued and sent in the background (202): GET lists it "
            "with its status, a failed one with why. Logged on the record; the writer "
            "follows it.",
        )
        @blp.arguments(schemas.MessageIn)
        @blp.response(202, schemas.QueuedOut)
        def post(self, data: dict[str, Any], record_id: int) -> dict[str, Any]:
            ctx = service_ctx()
            row = messages.write_message(
                ctx,
                RecordRef(record_type, record_id),
                _draft(data),
                secret_key=current_app.config["SECRET_KEY"],
            )
            ctx.session.commit()
            _queue(row.id)
            return {"id": row.id, "status": str(row.status)}

        @blp.doc(summary=f"The messages sent about the {kind}, newest first")
        @blp.response(200, schemas.MessageListOut)
        def get(self, record_id: int) -> dict[str, Any]:
            ctx = service_ctx()
            rows = messages.list_messages(ctx, RecordRef(record_type, record_id))
            return {"results": [vm.message_summary(row, author) for row, author in rows]}


for _type, _plural in PLURALS.items():
    _routes(_type, _plural)

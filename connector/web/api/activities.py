"""Log emails and notes on records; read activities and attachments."""

from __future__ import annotations

from typing import Any, cast

from flask import Response, request
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, ValidationError

from connector.activities import service
from connector.activities.intake import email_from_payload
from connector.activities.mime import normalize_message_id, parse_raw_message
from connector.lookup.view_models import activity_detail, activity_summary
from connector.records.refs import RecordRef
from connector.schemas import activities as schemas
from connector.schemas import cards as out
from connector.web.api.base import Blueprint
from connector.web.auth import login_required
from connector.web.handlers import service_ctx

blp = Blueprint("activities", __name__, description="Log emails and notes; read the timeline")

RFC822 = "message/rfc822"


def _load(schema: Schema, data: Any, location: str) -> dict[str, Any]:
    try:
        # marshmallow types load() as Any; a schema without many=True loads one dict.
        return cast(dict[str, Any], schema.load(data))
    except ValidationError as err:
        # Keyed by where the input was, as webargs keys every other operation's errors.
        errors = {location: err.messages}
        abort(400, errors=errors)
        raise  # abort raises; this keeps type checkers and readers sure of it


def _refs(items: list[dict[str, Any]]) -> list[RecordRef]:
    return [RecordRef.from_json(item) for item in items]


def _log_request() -> tuple[Any, list[RecordRef]]:
    if request.mimetype == RFC822:
        args = _load(schemas.LogEmailArgs(), request.args.to_dict(flat=False), "query")
        refs = [RecordRef.parse(item) for item in args["record"]]
        raw = request.get_data(cache=False)
        return parse_raw_message(raw), refs
    if not request.is_json:
        abort(
            415,
            message=f"Send the email as application/json or as {RFC822}.",
        )
    # Not JSON, too deep or not text: a 400 naming the problem (connector.web.json_input).
    body = request.get_json()
    if not isinstance(body, dict):
        abort(400, message="The body is not a JSON object.", errors={"json": ["invalid"]})
    data = _load(schemas.LogEmailIn(), body, "json")
    return email_from_payload(data), _refs(data.pop("records"))


@blp.route("/emails")
class Emails(MethodView):
    decorators = [login_required]

    @blp.doc(
        requestBody={
            "required": True,
            "content": {
                "application/json": {"schema": schemas.LogEmailIn},
                RFC822: {
                    "schema": {"type": "string", "format": "binary"},
                    "description": "The raw message; name the records in the query string",
                },
            },
        },
        parameters=[
            {
                "in": "query",
                "name": "record",
                "schema": {"type": "array", "items": {"type": "string"}},
                "description": f"With {RFC822}: type:id of each record, repeated",
                "required": False,
            }
        ],
    )
    @blp.response(201, schemas.LogEmailOut, description="Logged (something new was written)")
    @blp.alt_response(200, schema=schemas.LogEmailOut, description="Already logged on them all")
    def post(self) -> tuple[dict[str, Any], int]:
        """Log an email on one or more records.

        Logging the same Message-ID again writes nothing twice: one activity per
        email, linked once to each record, and `already_logged` says so.
        """
        email, refs = _log_request()
        ctx = service_ctx()
        result = service.log_email(ctx, email, refs)
        ctx.session.commit()
        body = {
            "activity": activity_summary(result.activity),
            "already_logged": result.already_logged,
            "newly_linked": [{"type": r.type.value, "id": r.id} for r in result.newly_linked],
            "already_linked": [{"type": r.type.value, "id": r.id} for r in result.already_linked],
        }
        return body, 200 if result.already_logged else 201


@blp.route("/emails/logged")
class LoggedEmail(MethodView):
    decorators = [login_required]

    @blp.arguments(schemas.LoggedArgs, location="query")
    @blp.response(200, schemas.LoggedOut)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Has this email (by Message-ID) been logged, and on which records?"""
        message_id = normalize_message_id(args["message_id"])
        activity = service.find_logged_email(service_ctx(), message_id) if message_id else None
        return {
            "logged": activity is not None,
            "activity": activity_summary(activity) if activity else None,
        }


@blp.route("/notes")
class Notes(MethodView):
    decorators = [login_required]

    @blp.arguments(schemas.NoteIn)
    @blp.response(201, out.ActivityOut)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Add a note to one or more records."""
        ctx = service_ctx()
        note = service.add_note(ctx, data["body"], _refs(data["records"]), data["subject"])
        ctx.session.commit()
        return activity_summary(note)


@blp.route("/activities/<int:activity_id>")
class ActivityItem(MethodView):
    decorators = [login_required]

    @blp.response(200, out.ActivityDetailOut)
    def get(self, activity_id: int) -> dict[str, Any]:
        """An activity with its whole (sanitized) body."""
        return activity_detail(service.get_activity(service_ctx(), activity_id))


@blp.route("/attachments/<int:attachment_id>")
class AttachmentItem(MethodView):
    decorators = [login_required]

    @blp.response(
        200, {"type": "string", "format": "binary"}, content_type="application/octet-stream"
    )
    def get(self, attachment_id: int) -> Response:
        """An attachment's content, as a download."""
        attachment = service.get_attachment(service_ctx(), attachment_id)
        return Response(
            attachment.content,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Disposition": _attachment_disposition(attachment.filename),
                "X-Content-Type-Options": "nosniff",
            },
        )


def _attachment_disposition(filename: str) -> str:
    from urllib.parse import quote

    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"

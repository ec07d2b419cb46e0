"""Schemas of emails, notes and logging requests."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from connector.ids import id_in_text_in_range
from connector.lookup.schemas import ActivityOut, RecordRefSchema


class AttachmentIn(Schema):
    filename = fields.String(required=True, validate=validate.Length(min=1, max=500))
    content_type = fields.String(
        load_default="application/octet-stream", validate=validate.Length(max=200)
    )
    content_base64 = fields.String(required=True)


class EmailIn(Schema):
    """An email as fields, or whole as `raw` (the RFC 822 message, base64)."""

    raw = fields.String(metadata={"description": "The whole message (RFC 822), base64"})
    message_id = fields.String(validate=validate.Length(max=998), allow_none=True)
    subject = fields.String(load_default="", validate=validate.Length(max=998))
    from_ = fields.String(data_key="from", validate=validate.Length(max=998))
    to = fields.List(fields.String(validate=validate.Length(max=998)), load_default=list)
    cc = fields.List(fields.String(validate=validate.Length(max=998)), load_default=list)
    date = fields.AwareDateTime(allow_none=True, default_timezone=None)
    body_html = fields.String(load_default="")
    body_text = fields.String(load_default="")
    attachments = fields.List(fields.Nested(AttachmentIn), load_default=list)

    @validates_schema
    def _raw_or_fields(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if "raw" not in data and "from_" not in data:
            raise ValidationError("Give the email's 'from' (or the whole message as 'raw').")


class LogEmailIn(EmailIn):
    records = fields.List(
        fields.Nested(RecordRefSchema), required=True, validate=validate.Length(min=1, max=20)
    )


class LogEmailArgs(Schema):
    """For a raw message (Content-Type: message/rfc822), the records go in the query string."""

    record = fields.List(
        fields.String(
            validate=[
                validate.Regexp(r"^(contact|company|lead|ticket):\d+$"),
                id_in_text_in_range,
            ]
        ),
        required=True,
        validate=validate.Length(min=1, max=20),
        metadata={"description": "type:id, repeated: record=contact:12&record=lead:3"},
    )


class LogEmailOut(Schema):
    activity = fields.Nested(ActivityOut)
    already_logged = fields.Boolean(
        metadata={"description": "True when the email was on every named record already"}
    )
    newly_linked = fields.List(fields.Nested(RecordRefSchema))
    already_linked = fields.List(fields.Nested(RecordRefSchema))


class LoggedArgs(Schema):
    message_id = fields.String(required=True, validate=validate.Length(min=1, max=998))


class LoggedOut(Schema):
    logged = fields.Boolean()
    activity = fields.Nested(ActivityOut, allow_none=True)


class NoteIn(Schema):
    body = fields.String(required=True, validate=validate.Length(min=1, max=100_000))
    subject = fields.String(load_default="", validate=validate.Length(max=998))
    records = fields.List(
        fields.Nested(RecordRefSchema), required=True, validate=validate.Length(min=1, max=20)
    )

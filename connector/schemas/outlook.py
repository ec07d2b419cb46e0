from __future__ import annotations

from marshmallow import Schema, fields, validate

from connector.ids import Id
from connector.schemas.cards import RecordRefSchema


class ReplyIn(Schema):
    message_id = fields.String(
        required=True,
        validate=validate.Length(min=1, max=1000),
        metadata={"description": "The Graph (REST) id of the message replied to"},
    )
    template_id = Id(required=True)
    record = fields.Nested(
        RecordRefSchema,
        allow_none=True,
        metadata={"description": "The record that fills the template and gets the reply logged"},
    )


class ReplyOut(Schema):
    sent = fields.Boolean()
    subject = fields.String()
    activity_id = fields.Integer(
        allow_none=True, metadata={"description": "The logged reply; null when no record"}
    )
    records = fields.List(fields.Nested(RecordRefSchema))

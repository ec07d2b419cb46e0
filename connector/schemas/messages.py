"""Schemas of messages written from a record (connector.mail.messages)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from connector.ids import Id
from connector.requires_one_of import RequiresOneOf
from connector.schemas.cards import MessageOut

# As a template's body may be (connector.schemas.templates).
MAX_BODY = 200_000


class MessageIn(RequiresOneOf):
    required_one_of = ("body_text", "body_html", "template_id")
    required_one_of_message = "Give the message's body: 'body_text', 'body_html' or 'template_id'."

    subject = fields.String(
        validate=validate.Length(max=998),
        metadata={"description": "Default: the record's title with its number ([#L-12])"},
    )
    body_text = fields.String(validate=validate.Length(min=1, max=MAX_BODY))
    body_html = fields.String(
        validate=validate.Length(min=1, max=MAX_BODY),
        metadata={"description": "Sanitized as it is sent; with body_text, that is the text part"},
    )
    template_id = Id(
        metadata={"description": "A template rendered for the record (not with a body)"}
    )


class PreviewOut(Schema):
    from_ = fields.String(data_key="from", attribute="from")
    to = fields.List(fields.String())
    reply_to = fields.String(metadata={"description": "The record's own reply address"})
    subject = fields.String()
    body_html = fields.String(metadata={"description": "Sanitized HTML, as it is sent"})
    body_text = fields.String()


class QueuedOut(Schema):
    id = fields.Integer()
    status = fields.String(metadata={"enum": ["queued", "sent", "failed"]})


class MessageListOut(Schema):
    results = fields.List(fields.Nested(MessageOut))

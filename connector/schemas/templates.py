from __future__ import annotations

from marshmallow import Schema, fields, validate

from connector.schemas.cards import RecordRefSchema


class TemplateOut(Schema):
    id = fields.Integer()
    name = fields.String()
    subject = fields.String()
    body_html = fields.String()


class TemplateIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    subject = fields.String(required=True, validate=validate.Length(min=1, max=998))
    body_html = fields.String(required=True, validate=validate.Length(min=1, max=200_000))


class RenderIn(Schema):
    record = fields.Nested(
        RecordRefSchema,
        allow_none=True,
        metadata={"description": "The record whose fields fill the placeholders"},
    )


class RenderedOut(Schema):
    subject = fields.String()
    body_html = fields.String(metadata={"description": "Sanitized HTML, values escaped"})
    body_text = fields.String()

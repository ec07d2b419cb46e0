from __future__ import annotations

from marshmallow import Schema, fields, validate

from connector.ids import ID_TEXT
from connector.schemas.cards import RECORD_TYPES, RecordRefSchema


class TemplateOut(Schema):
    id = fields.Integer()
    name = fields.String()
    subject = fields.String(metadata={"description": "As written, placeholders and all"})
    body_html = fields.String()


class TemplateListOut(TemplateOut):
    subject_preview = fields.String(
        metadata={
            "description": "The subject as it reads for the record asked for (placeholders "
            "empty without one); the template's name when it cannot render for it"
        }
    )


class TemplateListArgs(Schema):
    record = fields.String(
        validate=validate.Regexp(f"^(?:{'|'.join(RECORD_TYPES)}):{ID_TEXT}$"),
        metadata={"description": "type:id of the record the pickers fill the subjects for"},
    )


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

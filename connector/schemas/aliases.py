"""Schemas of /api/v1/aliases: an organization's team addresses (sales@, support@)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from connector.ids import Id
from connector.mail.models import Accept, Creates
from connector.schemas.cards import email_address

CREATES = [c.value for c in Creates]
ACCEPTS = [a.value for a in Accept]


class AliasIn(Schema):
    address = email_address(
        required=True,
        metadata={"description": "sales@D, at the organization's mail domain D"},
    )
    creates = fields.String(
        required=True,
        validate=validate.OneOf(CREATES),
        metadata={"description": "What mail to it opens when it follows up no record"},
    )
    owner_id = Id(
        allow_none=True,
        load_default=None,
        metadata={"description": "The user who owns what it opens (one of the organization's)"},
    )
    accept = fields.String(
        load_default=Accept.EVERYONE.value,
        validate=validate.OneOf(ACCEPTS),
        metadata={"description": "Whose mail it takes: anyone's, known contacts', the team's"},
    )
    auto_reply = fields.Boolean(
        load_default=False,
        metadata={"description": "Acknowledge the sender of each record it opens"},
    )
    auto_reply_template_id = Id(
        allow_none=True,
        load_default=None,
        metadata={
            "description": "The template the acknowledgment is written from (implies "
            "auto_reply); none: a plain built-in message"
        },
    )


class AliasOut(Schema):
    id = fields.Integer()
    address = fields.String()
    creates = fields.String(metadata={"enum": CREATES})
    owner_id = fields.Integer(allow_none=True)
    owner_email = fields.String(allow_none=True)
    accept = fields.String(metadata={"enum": ACCEPTS})
    auto_reply = fields.Boolean()
    auto_reply_template_id = fields.Integer(allow_none=True)
    created_at = fields.String(metadata={"description": "UTC, ISO 8601"})

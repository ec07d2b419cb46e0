"""Schemas of emails, notes and logging requests."""

from __future__ import annotations

import datetime as dt

from marshmallow import Schema, ValidationError, fields, validate

from connector.ids import ID_TEXT
from connector.requires_one_of import RequiresOneOf
from connector.schemas.cards import ActivityOut, RecordRefSchema

# What intake's b64decode(validate=True) takes: the document states the same rule.
BASE64 = validate.Regexp(
    r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$",
    error="Not valid base64.",
)


def in_utc_range(value: dt.datetime) -> None:
    """Dates are kept in UTC: 9999-12-31T23:59:59-23:59 is a valid date-time, but in UTC it
    is past year 9999, which Python's datetime cannot hold."""
    try:
        value.astimezone(dt.UTC)
    except OverflowError as exc:
        raise ValidationError("Must be a date between years 1 and 9999 in UTC.") from exc


class AttachmentIn(Schema):
    filename = fields.String(required=True, validate=validate.Length(min=1, max=500))
    content_type = fields.String(
        load_default="application/octet-stream", validate=validate.Length(max=200)
    )
    content_base64 = fields.String(required=True, validate=BASE64)


class EmailIn(RequiresOneOf):
    """An email as fields, or whole as `raw` (the RFC 822 message, base64)."""

    required_one_of = ("from_", "raw")
    required_one_of_message = "Give the email's 'from' (or the whole message as 'raw')."

    raw = fields.String(
        validate=BASE64, metadata={"description": "The whole message (RFC 822), base64"}
    )
    message_id = fields.String(validate=validate.Length(max=998), allow_none=True)
    subject = fields.String(load_default="", validate=validate.Length(max=998))
    # The sender as the message says it: a bounce from <>, or a broken From:, is logged
    # all the same (matching no contact), so this is text, not an address to validate.
    from_ = fields.String(
        data_key="from",
        validate=validate.Length(max=998),
        metadata={"description": "The sender, as the message's From: says it"},
    )
    to = fields.List(fields.String(validate=validate.Length(max=998)), load_default=list)
    cc = fields.List(fields.String(validate=validate.Length(max=998)), load_default=list)
    date = fields.AwareDateTime(allow_none=True, default_timezone=None, validate=in_utc_range)
    body_html = fields.String(load_default="")
    body_text = fields.String(load_default="")
    attachments = fields.List(fields.Nested(AttachmentIn), load_default=list)


class LogEmailIn(EmailIn):
    records = fields.List(
        fields.Nested(RecordRefSchema), required=True, validate=validate.Length(min=1, max=20)
    )


class LogEmailArgs(Schema):
    """For a raw message (Content-Type: message/rfc822), the records go in the query string."""

    record = fields.List(
        fields.String(validate=validate.Regexp(f"^(?:contact|company|lead|ticket):{ID_TEXT}$")),
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

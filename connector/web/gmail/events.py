"""The shape of the event objects Google posts to the add-on, checked before anything reads them.

Every part the handlers read must be of the type Google sends (an object, a list, a
string); anything else is not an add-on event and gets a bare 400. Keys Google adds that
we do not read are let through.
"""

from __future__ import annotations

from typing import Any

from marshmallow import INCLUDE, Schema, fields


class _Open(Schema):
    """A part of Google's event: the keys read here must have their type; others are Google's."""

    class Meta:
        unknown = INCLUDE


class _StringInputs(_Open):
    value = fields.List(fields.Raw())


class _DateInput(_Open):
    # An int64, which Google's JSON writes as a string; form_date checks the value.
    msSinceEpoch = fields.Raw()


class _FormInput(_Open):
    stringInputs = fields.Nested(_StringInputs)
    dateInput = fields.Nested(_DateInput)


class _TimeZone(_Open):
    # An IANA name, and the offset from UTC in milliseconds (an int, or a string of one).
    id = fields.String(allow_none=True)
    offset = fields.Raw(allow_none=True)


class _CommonEventObject(_Open):
    timeZone = fields.Nested(_TimeZone, allow_none=True)
    parameters = fields.Dict(keys=fields.String(), values=fields.String(), allow_none=True)
    formInputs = fields.Dict(
        keys=fields.String(), values=fields.Nested(_FormInput), allow_none=True
    )


class _GmailEvent(_Open):
    messageId = fields.String(allow_none=True)
    threadId = fields.String(allow_none=True)
    accessToken = fields.String(allow_none=True)
    toRecipients = fields.List(fields.String(), allow_none=True)


class _AuthorizationEventObject(_Open):
    userOAuthToken = fields.String(allow_none=True)
    userIdToken = fields.String(allow_none=True)


class _Event(_Open):
    commonEventObject = fields.Nested(_CommonEventObject, allow_none=True)
    gmail = fields.Nested(_GmailEvent, allow_none=True)
    authorizationEventObject = fields.Nested(_AuthorizationEventObject, allow_none=True)


def event_problems(event: Any) -> dict[str, Any]:
    """What is wrong with the shape of an event object ({} when nothing): every part read
    here is an object, a list or a string as in Google's, so handlers can read it plainly."""
    if not isinstance(event, dict):
        return {"_schema": ["The event is not a JSON object."]}
    return _Event().validate(event)

"""Schemas of what the API accepts to create and change records."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from connector.ids import ID_TEXT, Id, WholeNumber
from connector.records.models import LeadStage, TicketPriority, TicketStatus
from connector.requires_one_of import RequiresOneOf
from connector.schemas.activities import EmailIn, in_utc_range
from connector.schemas.cards import RecordRefSchema, domain_name, email_address


def not_blank(value: str) -> None:
    """A name or title of spaces alone would be stored empty (the services strip them)."""
    if not value.strip():
        raise ValidationError("Must not be blank.")


NAME: list[Callable[[Any], Any]] = [validate.Length(min=1, max=200), not_blank]
TITLE: list[Callable[[Any], Any]] = [validate.Length(min=1, max=300), not_blank]
# The column is NUMERIC(14, 2): twelve digits before the point.
MAX_REVENUE = Decimal("999999999999.99")


def _revenue() -> fields.Decimal:
    return fields.Decimal(
        allow_none=True,
        places=2,
        validate=validate.Range(min=0, max=MAX_REVENUE),
        # Numbers in the document: apispec would write the Decimal bounds as strings.
        metadata={"minimum": 0, "maximum": float(MAX_REVENUE)},
    )


LOST_REASON = validate.Length(max=500)


class CompanyIn(Schema):
    name = fields.String(required=True, validate=NAME)
    domains = fields.List(domain_name(), load_default=list)
    website = fields.String(allow_none=True, validate=validate.Length(max=500))
    phone = fields.String(allow_none=True, validate=validate.Length(max=50))
    owner_id = Id(allow_none=True, metadata={"description": "Defaults to the caller"})


class ContactIn(Schema):
    name = fields.String(required=True, validate=validate.Length(max=200))
    emails = fields.List(
        email_address(),
        required=True,
        validate=validate.Length(min=1, max=20),
    )
    phone = fields.String(allow_none=True, validate=validate.Length(max=50))
    job_title = fields.String(allow_none=True, validate=validate.Length(max=200))
    company_id = Id(
        allow_none=True,
        metadata={"description": "Omit both this and new_company to use the company of the domain"},
    )
    new_company = fields.Nested(CompanyIn, allow_none=True)
    owner_id = Id(allow_none=True, metadata={"description": "Defaults to the caller"})


class LeadIn(RequiresOneOf):
    required_one_of = ("title", "email")
    required_one_of_message = "Give a title, or the email to take it from."

    title = fields.String(
        validate=TITLE, metadata={"description": "Defaults to the email's subject"}
    )
    description = fields.String(metadata={"description": "Defaults to the email's text"})
    stage = fields.String(
        load_default=LeadStage.NEW.value, validate=validate.OneOf([s.value for s in LeadStage])
    )
    expected_revenue = _revenue()
    probability = WholeNumber(load_default=10, validate=validate.Range(min=0, max=100))
    close_date = fields.Date(allow_none=True)
    lost_reason = fields.String(
        allow_none=True, validate=LOST_REASON, metadata={"description": "Needed for lost"}
    )
    contact_id = Id(allow_none=True)
    company_id = Id(allow_none=True)
    owner_id = Id(allow_none=True)
    email = fields.Nested(
        EmailIn,
        metadata={
            "description": "The email the lead comes from: it names the contact and company "
            "(the sender's, created when unknown) and is logged on the lead"
        },
    )


class TicketIn(RequiresOneOf):
    required_one_of = ("subject", "email")
    required_one_of_message = "Give a subject, or the email to take it from."

    subject = fields.String(
        validate=TITLE, metadata={"description": "Defaults to the email's subject"}
    )
    description = fields.String(metadata={"description": "Defaults to the email's text"})
    status = fields.String(
        load_default=TicketStatus.NEW.value,
        validate=validate.OneOf([s.value for s in TicketStatus]),
    )
    priority = fields.String(
        load_default=TicketPriority.NORMAL.value,
        validate=validate.OneOf([p.value for p in TicketPriority]),
    )
    contact_id = Id(allow_none=True)
    company_id = Id(allow_none=True)
    owner_id = Id(allow_none=True)
    email = fields.Nested(EmailIn, metadata={"description": "As for leads"})


class CompanyPatch(Schema):
    """The fields to change; those left out stay as they are. A list replaces the old one."""

    name = fields.String(validate=NAME)
    domains = fields.List(domain_name())
    website = fields.String(allow_none=True, validate=validate.Length(max=500))
    phone = fields.String(allow_none=True, validate=validate.Length(max=50))
    owner_id = Id(allow_none=True)


class ContactPatch(Schema):
    """The fields to change; those left out stay as they are. `emails` replaces the old list."""

    name = fields.String(validate=NAME)
    emails = fields.List(email_address(), validate=validate.Length(min=1, max=20))
    phone = fields.String(allow_none=True, validate=validate.Length(max=50))
    job_title = fields.String(allow_none=True, validate=validate.Length(max=200))
    company_id = Id(allow_none=True)
    owner_id = Id(allow_none=True)


class LeadPatch(Schema):
    """The fields to change. Won or lost sets the probability (100, 0) and the close date
    (today) unless they are given; lost needs a lost_reason."""

    title = fields.String(validate=TITLE)
    description = fields.String()
    stage = fields.String(validate=validate.OneOf([s.value for s in LeadStage]))
    expected_revenue = _revenue()
    probability = WholeNumber(validate=validate.Range(min=0, max=100))
    close_date = fields.Date(allow_none=True)
    lost_reason = fields.String(allow_none=True, validate=LOST_REASON)
    contact_id = Id(allow_none=True)
    company_id = Id(allow_none=True)
    owner_id = Id(allow_none=True)


class TicketPatch(Schema):
    subject = fields.String(validate=TITLE)
    description = fields.String()
    status = fields.String(validate=validate.OneOf([s.value for s in TicketStatus]))
    priority = fields.String(validate=validate.OneOf([p.value for p in TicketPriority]))
    contact_id = Id(allow_none=True)
    company_id = Id(allow_none=True)
    owner_id = Id(allow_none=True, metadata={"description": "The assignee"})


class MergeIn(Schema):
    from_ = Id(
        required=True,
        data_key="from",
        metadata={"description": "The duplicate to merge into this one; it is removed"},
    )


class ListArgs(Schema):
    """The filters of a list; each type takes those its records have."""

    owner_id = Id()
    company_id = Id(metadata={"description": "Contacts, leads and tickets"})
    contact_id = Id(metadata={"description": "Leads and tickets"})
    stage = fields.String(
        validate=validate.OneOf([s.value for s in LeadStage]), metadata={"description": "Leads"}
    )
    status = fields.String(
        validate=validate.OneOf([s.value for s in TicketStatus]),
        metadata={"description": "Tickets"},
    )
    updated_since = fields.AwareDateTime(
        default_timezone=dt.UTC,
        validate=in_utc_range,
        metadata={"description": "ISO 8601; records whose own fields changed since then"},
    )
    archived = fields.Boolean(
        load_default=False, metadata={"description": "true: the archived records instead"}
    )
    cursor = fields.String(
        validate=validate.Length(max=200),
        metadata={"description": "next_cursor of the page before"},
    )
    limit = WholeNumber(load_default=50, validate=validate.Range(min=1, max=200))


class TaskIn(Schema):
    title = fields.String(required=True, validate=TITLE)
    due_date = fields.Date(allow_none=True)
    record = fields.Nested(RecordRefSchema, allow_none=True)
    assignee_id = Id(allow_none=True, metadata={"description": "Defaults to the caller"})


class TaskPatch(Schema):
    title = fields.String(validate=TITLE)
    due_date = fields.Date(allow_none=True)
    done = fields.Boolean()
    assignee_id = Id(allow_none=True)


class TaskListArgs(Schema):
    assignee = fields.String(
        load_default="me",
        metadata={"description": "'me' (default), 'all', or a user id"},
        validate=validate.Regexp(f"^(?:me|all|{ID_TEXT})$"),
    )
    include_done = fields.Boolean(load_default=False)
    due_before = fields.Date(allow_none=True)
    limit = WholeNumber(load_default=50, validate=validate.Range(min=1, max=200))


class RecordLinkOut(Schema):
    url = fields.String(
        metadata={
            "description": "Opens the record's page: read-only, and editable by a user "
            "of its organization signed in to the connector"
        }
    )

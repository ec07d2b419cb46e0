"""Schemas of what the API returns about records (cards, lookups, search)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from connector.addresses import normalize_domain, normalize_email
from connector.ids import Id
from connector.records.models import LeadStage, RecordType, TicketPriority, TicketStatus

RECORD_TYPES = [t.value for t in RecordType]


def _normalizes(normalize: Callable[[str], str | None], what: str) -> Callable[[str], None]:
    """The services' own reading of an address or domain, checked with the rest of the input."""

    def check(value: str) -> None:
        if normalize(value) is None:
            raise ValidationError(f"{value!r} is not {what}.")

    return check


def email_address(
    max_length: int = 320, metadata: dict[str, Any] | None = None, **kwargs: Any
) -> fields.String:
    """An email address ("ann@acme.test"; also "Ann <ann@acme.test>", as in a header)."""
    return fields.String(
        validate=[
            validate.Length(min=3, max=max_length),
            _normalizes(normalize_email, "an email address"),
        ],
        metadata={"format": "email", **(metadata or {})},
        **kwargs,
    )


def domain_name(**kwargs: Any) -> fields.String:
    """A domain ("acme.test"; a URL or "www." in front is taken off)."""
    return fields.String(
        validate=[validate.Length(min=3, max=253), _normalizes(normalize_domain, "a domain")],
        metadata={"pattern": r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$"},
        **kwargs,
    )


class RecordRefSchema(Schema):
    type = fields.String(required=True, validate=validate.OneOf(RECORD_TYPES))
    id = Id(required=True)


class NamedRefSchema(Schema):
    id = fields.Integer()
    name = fields.String()


class LifecycleOut(Schema):
    owner_id = fields.Integer(allow_none=True)
    version = fields.Integer(
        metadata={"description": "Moves on with each change of the record's fields (the ETag)"}
    )
    updated_at = fields.String(metadata={"description": "When its fields last changed (UTC)"})


class CompanyOut(LifecycleOut):
    id = fields.Integer()
    name = fields.String()
    domains = fields.List(fields.String())
    website = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)


class ContactOut(LifecycleOut):
    id = fields.Integer()
    name = fields.String()
    emails = fields.List(fields.String())
    phone = fields.String(allow_none=True)
    job_title = fields.String(allow_none=True)
    company = fields.Nested(NamedRefSchema, allow_none=True)


class LeadOut(LifecycleOut):
    id = fields.Integer()
    title = fields.String()
    description = fields.String()
    stage = fields.String(metadata={"enum": [s.value for s in LeadStage]})
    expected_revenue = fields.Float(allow_none=True)
    probability = fields.Integer()
    close_date = fields.String(allow_none=True)
    lost_reason = fields.String(allow_none=True)
    contact_id = fields.Integer(allow_none=True)
    company_id = fields.Integer(allow_none=True)
    created_at = fields.String()


class TicketOut(LifecycleOut):
    id = fields.Integer()
    subject = fields.String()
    description = fields.String()
    status = fields.String(metadata={"enum": [s.value for s in TicketStatus]})
    priority = fields.String(metadata={"enum": [p.value for p in TicketPriority]})
    contact_id = fields.Integer(allow_none=True)
    company_id = fields.Integer(allow_none=True)
    created_at = fields.String()


class TaskOut(Schema):
    id = fields.Integer()
    title = fields.String()
    due_date = fields.String(allow_none=True)
    done = fields.Boolean()
    assignee_id = fields.Integer(allow_none=True)
    record = fields.Nested(RecordRefSchema, allow_none=True)


class AttachmentOut(Schema):
    id = fields.Integer()
    filename = fields.String()
    content_type = fields.String()
    size = fields.Integer()


class OmittedAttachmentOut(Schema):
    filename = fields.String()
    content_type = fields.String()
    size = fields.Integer()


class ActivityOut(Schema):
    id = fields.Integer()
    kind = fields.String(metadata={"enum": ["email", "note"]})
    occurred_at = fields.String()
    subject = fields.String()
    message_id = fields.String(allow_none=True)
    from_ = fields.String(data_key="from", attribute="from")
    to = fields.List(fields.String())
    cc = fields.List(fields.String())
    snippet = fields.String()
    attachments = fields.List(fields.Nested(AttachmentOut))
    omitted_attachments = fields.List(
        fields.Nested(OmittedAttachmentOut),
        metadata={"description": "Attachments not kept because the email was over the size cap"},
    )
    records = fields.List(fields.Nested(RecordRefSchema))


class ActivityDetailOut(ActivityOut):
    body_html = fields.String(metadata={"description": "Sanitized HTML"})
    body_text = fields.String()


class ByOut(Schema):
    id = fields.Integer(allow_none=True)
    name = fields.String()


class HistoryOut(Schema):
    at = fields.String(metadata={"description": "UTC, ISO 8601"})
    by = fields.Nested(ByOut)
    field = fields.String(
        metadata={"description": "A field's name, or archived or merged"},
    )
    from_ = fields.Raw(data_key="from", attribute="from", allow_none=True)
    to = fields.Raw(allow_none=True)
    from_label = fields.String(
        allow_none=True, metadata={"description": "What a person reads (an owner's name)"}
    )
    to_label = fields.String(allow_none=True)


class DuplicateOut(Schema):
    id = fields.Integer()
    name = fields.String()
    emails = fields.List(fields.String())


class InboundRecordOut(Schema):
    type = fields.String(metadata={"enum": [*RECORD_TYPES, "task"]})
    id = fields.Integer()
    title = fields.String()
    number = fields.String(
        allow_none=True, metadata={"description": 'What people quote: "L-12", "T-34"'}
    )


class InboundOut(Schema):
    at = fields.String(metadata={"description": "When it came in (UTC, ISO 8601)"})
    subject = fields.String()
    alias = fields.String(
        allow_none=True,
        metadata={"description": "The team address it came to (none: a record's reply address)"},
    )
    outcome = fields.String(
        allow_none=True,
        metadata={"description": "What became of it: created, appended, bounce, loop, held…"},
    )
    record = fields.Nested(
        InboundRecordOut,
        allow_none=True,
        metadata={"description": "The record it opened or went to, when there is one"},
    )


class BouncingOut(Schema):
    email = fields.String()
    since = fields.String(metadata={"description": "When mail to it last bounced (UTC)"})
    reason = fields.String()


class MessageOut(Schema):
    """A message sent about a record: written from it, or the alias's acknowledgment."""

    id = fields.Integer()
    subject = fields.String()
    to = fields.List(fields.String())
    status = fields.String(metadata={"enum": ["queued", "sent", "failed"]})
    error = fields.String(
        allow_none=True,
        metadata={"description": "Why it failed (or why it still waits), as the server said"},
    )
    created_at = fields.String(metadata={"description": "UTC, ISO 8601"})
    sent_at = fields.String(allow_none=True)
    author = fields.Nested(
        NamedRefSchema,
        allow_none=True,
        metadata={"description": "Who wrote it; null for the connector's own (acknowledgments)"},
    )


FOLLOWER_KINDS = ["user", "contact"]


class FollowerOut(Schema):
    id = fields.Integer(
        allow_none=True,
        metadata={
            "description": "What DELETE .../followers/{id} takes. Null only on a record's "
            "card, for an owner who follows it without having been added yet (the "
            "followers API always gives an id)"
        },
    )
    kind = fields.String(metadata={"enum": FOLLOWER_KINDS})
    name = fields.String()
    email = fields.String(allow_none=True)
    user_id = fields.Integer(allow_none=True)
    contact_id = fields.Integer(allow_none=True)
    is_owner = fields.Boolean(metadata={"description": "The record's owner"})
    is_me = fields.Boolean(metadata={"description": "The caller"})


class CardOut(Schema):
    """A record with what surrounds it: the contact and company, open items, recent activity."""

    contact = fields.Nested(ContactOut, allow_none=True)
    company = fields.Nested(CompanyOut, allow_none=True)
    lead = fields.Nested(LeadOut)
    ticket = fields.Nested(TicketOut)
    leads = fields.List(fields.Nested(LeadOut))
    tickets = fields.List(fields.Nested(TicketOut))
    tasks = fields.List(fields.Nested(TaskOut))
    activities = fields.List(fields.Nested(ActivityOut))
    history = fields.List(
        fields.Nested(HistoryOut), metadata={"description": "The record's changes, newest first"}
    )
    duplicates = fields.List(
        fields.Nested(DuplicateOut),
        metadata={"description": "Contacts: others with the same name and company"},
    )
    inbound = fields.List(
        fields.Nested(InboundOut),
        metadata={
            "description": "Contacts: the latest messages from them that came in through the "
            "team's addresses, newest first"
        },
    )
    messages = fields.List(
        fields.Nested(MessageOut),
        metadata={"description": "The latest messages sent about the record, newest first"},
    )
    bouncing = fields.List(
        fields.Nested(BouncingOut),
        metadata={"description": "Contacts: their addresses that mail bounced from"},
    )
    followers = fields.List(
        fields.Nested(FollowerOut),
        metadata={"description": "Who follows the record (gets mail about it), oldest first"},
    )


class ProposalOut(Schema):
    name = fields.String()
    email = fields.String()
    company = fields.Nested(NamedRefSchema, allow_none=True)
    new_company = fields.Dict(
        allow_none=True, metadata={"description": "{name, domain} of a company to create"}
    )


class LookupResultOut(CardOut):
    email = fields.String()
    free_mail = fields.Boolean()
    proposal = fields.Nested(
        ProposalOut,
        allow_none=True,
        metadata={"description": "What 'Create contact' prefills, when there is no contact"},
    )
    archived_contact = fields.Nested(
        NamedRefSchema,
        allow_none=True,
        metadata={
            "description": "When the address is an archived contact's: that one (an admin "
            "can restore it), and no proposal"
        },
    )


class LookupArgs(Schema):
    # Not validated one by one: a message's recipients can hold what is no address here
    # ("Mailer-Daemon", "bob@intranet"), and the others must still be looked up.
    email = fields.List(
        fields.String(validate=validate.Length(min=1, max=998)),
        required=True,
        validate=validate.Length(min=1, max=50),
        metadata={
            "description": "One or more addresses (repeat the parameter), as a message's "
            'headers give them ("Bob Smith <bob@x.com>": the name is what a new contact\'s '
            "proposal takes); those that are no email address are left out of the results"
        },
    )


class LookupOut(Schema):
    results = fields.List(fields.Nested(LookupResultOut))


class SearchArgs(Schema):
    q = fields.String(required=True, validate=validate.Length(min=2, max=200))
    type = fields.List(fields.String(validate=validate.OneOf(RECORD_TYPES)), load_default=list)
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class SearchHitOut(Schema):
    type = fields.String()
    id = fields.Integer()
    title = fields.String()
    subtitle = fields.String(
        metadata={
            "description": "Who or what it is: a contact's job, company and address, a "
            "company's domains, a lead's stage or a ticket's status and whom it is for"
        }
    )
    email = fields.String(metadata={"description": "Contacts: their main address"})


class SearchOut(Schema):
    results = fields.List(fields.Nested(SearchHitOut))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()


class OrganizationOut(Schema):
    id = fields.Integer()
    name = fields.String()


class MeOut(Schema):
    id = fields.Integer()
    email = fields.String()
    name = fields.String()
    role = fields.String()
    organization = fields.Nested(OrganizationOut)

"""Plain, JSON-ready dictionaries of records: what cards and the task pane show.

Pure functions of the models, so that they can be cached as JSON and tested
without Flask.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from connector.activities.models import Activity
from connector.mail.models import InboundMessage, OutboundMail
from connector.mail.numbers import record_number
from connector.orgs.models import User
from connector.records.models import (
    Company,
    Contact,
    ContactEmail,
    Lead,
    RecordChange,
    RecordType,
    Task,
    Ticket,
)
from connector.records.refs import RecordRef
from connector.records.service import live

SNIPPET_LENGTH = 240
RECORD_TYPE_VALUES = frozenset(t.value for t in RecordType)


def iso_utc(value: dt.datetime) -> str:
    """ISO 8601 in UTC; SQLite hands back naive datetimes, which we store in UTC."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).isoformat()


def _lifecycle(record: Company | Contact | Lead | Ticket) -> dict[str, Any]:
    return {
        "owner_id": record.owner_id,
        "version": record.version,
        "updated_at": iso_utc(record.updated_at),
    }


def company_summary(company: Company) -> dict[str, Any]:
    return {
        "id": company.id,
        "name": company.name,
        "domains": [d.domain for d in company.domains],
        "website": company.website,
        "phone": company.phone,
        **_lifecycle(company),
    }


def contact_summary(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.id,
        "name": contact.name,
        "emails": [e.email for e in contact.emails],
        "phone": contact.phone,
        "job_title": contact.job_title,
        "company": (
            {"id": company.id, "name": company.name}
            if (company := live(contact.company)) is not None
            else None
        ),
        **_lifecycle(contact),
    }


def lead_summary(lead: Lead) -> dict[str, Any]:
    return {
        "id": lead.id,
        "title": lead.title,
        "description": lead.description,
        "stage": str(lead.stage),
        "expected_revenue": (
            float(lead.expected_revenue) if lead.expected_revenue is not None else None
        ),
        "probability": lead.probability,
        "close_date": lead.close_date.isoformat() if lead.close_date else None,
        "lost_reason": lead.lost_reason,
        "contact_id": lead.contact_id,
        "company_id": lead.company_id,
        "created_at": iso_utc(lead.created_at),
        **_lifecycle(lead),
    }


def ticket_summary(ticket: Ticket) -> dict[str, Any]:
    return {
        "id": ticket.id,
        "subject": ticket.subject,
        "description": ticket.description,
        "status": str(ticket.status),
        "priority": str(ticket.priority),
        "contact_id": ticket.contact_id,
        "company_id": ticket.company_id,
        "created_at": iso_utc(ticket.created_at),
        **_lifecycle(ticket),
    }


def inbound_summary(
    message: InboundMessage, alias_address: str | None, record_title: str | None
) -> dict[str, Any]:
    """A message that came in through a team address, and the record it went to (None when
    it went to none, or that record is gone or archived: `record_title` is None then)."""
    record = None
    kind = str(message.record_type) if message.record_type is not None else None
    if kind is not None and message.record_id is not None and record_title is not None:
        # A task is no RecordType (nothing is about a task), so it has no number.
        number = (
            record_number(RecordRef(RecordType(kind), message.record_id))
            if kind in RECORD_TYPE_VALUES
            else None
        )
        record = {"type": kind, "id": message.record_id, "title": record_title, "number": number}
    return {
        "at": iso_utc(message.received_at),
        "subject": message.subject,
        "alias": alias_address,
        "outcome": message.outcome,
        "record": record,
    }


def bouncing_addresses(emails: list[ContactEmail]) -> list[dict[str, Any]]:
    """The contact's addresses that mail we sent bounced from, with when and why."""
    return [
        {
            "email": e.email,
            "since": iso_utc(e.bounced_at),
            "reason": e.bounce_reason or "",
        }
        for e in emails
        if e.bounced_at is not None
    ]


def message_summary(row: OutboundMail, author: User | None) -> dict[str, Any]:
    """A message sent about a record (connector.mail.messages), as its list and the record's
    card show it: a failed one with why, so that it is never dropped silently."""
    return {
        "id": row.id,
        "subject": row.subject,
        "to": list(row.to_addresses or []),
        "status": str(row.status),
        # A queued one's too: why it waits ("kept queued: CONNECTOR_SMTP_URL is not set").
        "error": row.error,
        "created_at": iso_utc(row.created_at),
        "sent_at": iso_utc(row.sent_at) if row.sent_at is not None else None,
        "author": {"id": author.id, "name": author.name} if author is not None else None,
    }


def followers_seen_by(followers: list[dict[str, Any]], me_id: int) -> list[dict[str, Any]]:
    """Followers (connector.mail.following's Follower objects) with `is_me` set for this
    reader: a card cached for the organization says it for whoever read it first."""
    return [{**f, "is_me": f["user_id"] is not None and f["user_id"] == me_id} for f in followers]


def task_summary(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "title": task.title,
        "due_date": task.due_date.isoformat() if task.due_date else None,
        "done": task.done,
        "assignee_id": task.assignee_id,
        "record": (
            {"type": str(task.record_type), "id": task.record_id} if task.record_type else None
        ),
    }


def activity_summary(activity: Activity) -> dict[str, Any]:
    text = " ".join(activity.body_text.split())
    return {
        "id": activity.id,
        "kind": str(activity.kind),
        "occurred_at": iso_utc(activity.occurred_at),
        "subject": activity.subject,
        "message_id": activity.message_id,
        "from": activity.from_address,
        "to": list(activity.to_addresses),
        "cc": list(activity.cc_addresses),
        "snippet": text[:SNIPPET_LENGTH],
        "attachments": [
            {"id": a.id, "filename": a.filename, "content_type": a.content_type, "size": a.size}
            for a in activity.attachments
        ],
        "omitted_attachments": list(activity.omitted_attachments),
        "records": [
            {"type": str(link.record_type), "id": link.record_id} for link in activity.links
        ],
    }


def activity_detail(activity: Activity) -> dict[str, Any]:
    return {
        **activity_summary(activity),
        "body_html": activity.body_html,
        "body_text": activity.body_text,
    }


def history_entry(change: RecordChange) -> dict[str, Any]:
    return {
        "at": iso_utc(change.at),
        "by": {"id": change.by_id, "name": change.by_name},
        "field": change.field,
        "from": change.from_value,
        "to": change.to_value,
        "from_label": change.from_label,
        "to_label": change.to_label,
    }


def _shown(value: Any, label: str | None) -> str:
    if label is not None:
        return label
    if value is None or value == "" or value == []:
        return "none"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 12000, as the task pane's JavaScript writes it too
    return str(value)


FIELD_NAMES = {
    "owner_id": "owner",
    "company_id": "company",
    "contact_id": "contact",
    "expected_revenue": "expected revenue",
    "close_date": "close date",
    "lost_reason": "lost reason",
    "job_title": "job title",
}


def history_line(entry: dict[str, Any], when: str) -> str:
    """ "stage: qualified → won, by Ana, 12 Nov 14:02": one history entry as a person reads it,
    with the time already in the reader's zone (`when`)."""
    field = entry["field"]
    by = entry["by"]["name"] or "someone"
    if field == "archived":
        what = "archived" if entry["to"] else "restored"
        return f"{what}, by {by}, {when}"
    if field == "merged":
        return f"merged {entry['from_label'] or entry['from']} into this, by {by}, {when}"
    name = FIELD_NAMES.get(field, field.replace("_", " "))
    before = _shown(entry["from"], entry["from_label"])
    after = _shown(entry["to"], entry["to_label"])
    return f"{name}: {before} → {after}, by {by}, {when}"


def local_time(iso: str, zone: dt.tzinfo) -> str:
    """ "12 Nov 14:02" in the reader's zone ("12 Nov 2025 14:02" when not this year)."""
    moment = dt.datetime.fromisoformat(iso).astimezone(zone)
    now = dt.datetime.now(zone)
    day = f"{moment.day} {moment:%b}" + ("" if moment.year == now.year else f" {moment.year}")
    return f"{day} {moment:%H:%M}"

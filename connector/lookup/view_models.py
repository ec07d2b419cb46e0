"""Plain, JSON-ready dictionaries of records: what cards and the task pane show.

Pure functions of the models, so that they can be cached as JSON and tested
without Flask.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from connector.activities.models import Activity
from connector.records.models import Company, Contact, Lead, Task, Ticket

SNIPPET_LENGTH = 240


def iso_utc(value: dt.datetime) -> str:
    """ISO 8601 in UTC; SQLite hands back naive datetimes, which we store in UTC."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).isoformat()


def company_summary(company: Company) -> dict[str, Any]:
    return {
        "id": company.id,
        "name": company.name,
        "domains": [d.domain for d in company.domains],
        "website": company.website,
        "phone": company.phone,
    }


def contact_summary(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.id,
        "name": contact.name,
        "emails": [e.email for e in contact.emails],
        "phone": contact.phone,
        "job_title": contact.job_title,
        "company": (
            {"id": contact.company.id, "name": contact.company.name} if contact.company else None
        ),
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
        "contact_id": lead.contact_id,
        "company_id": lead.company_id,
        "owner_id": lead.owner_id,
        "created_at": iso_utc(lead.created_at),
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
        "owner_id": ticket.owner_id,
        "created_at": iso_utc(ticket.created_at),
    }


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

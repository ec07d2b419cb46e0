"""Every model, imported in one place so that Alembic sees the whole schema."""

from connector.accounts.models import LinkedAccount, Provider
from connector.activities.models import Activity, ActivityKind, ActivityLink, Attachment
from connector.audit.models import AuditEvent
from connector.email_templates.models import EmailTemplate
from connector.mail.models import (
    Alias,
    Follower,
    Heartbeat,
    InboundMessage,
    Mailbox,
    OutboundMail,
)
from connector.orgs.models import ApiKey, Organization, Role, User
from connector.orm import Base
from connector.records.models import (
    Company,
    CompanyDomain,
    Contact,
    ContactEmail,
    Lead,
    LeadStage,
    RecordChange,
    RecordType,
    Task,
    Ticket,
    TicketPriority,
    TicketStatus,
)

__all__ = [
    "Alias",
    "Follower",
    "Heartbeat",
    "InboundMessage",
    "Mailbox",
    "OutboundMail",
    "AuditEvent",
    "LinkedAccount",
    "Provider",
    "Activity",
    "ActivityKind",
    "ActivityLink",
    "ApiKey",
    "Attachment",
    "Base",
    "Company",
    "CompanyDomain",
    "Contact",
    "ContactEmail",
    "EmailTemplate",
    "Lead",
    "LeadStage",
    "Organization",
    "RecordChange",
    "RecordType",
    "Role",
    "Task",
    "Ticket",
    "TicketPriority",
    "TicketStatus",
    "User",
]

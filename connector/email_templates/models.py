"""Email templates, rendered for a record to reply with."""

from __future__ import annotations

from sqlalchemy import String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from connector.orm import Base, Timestamped
from connector.records.models import OrgOwned


class EmailTemplate(OrgOwned, Timestamped, Base):
    __tablename__ = "email_templates"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    name: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(998))
    body_html: Mapped[str] = mapped_column(Text)

"""audit log, deactivated users, and the external ids of imported leads

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 12:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["users.id"],
            name=op.f("fk_audit_events_actor_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_audit_events_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index("ix_audit_events_org_at", "audit_events", ["organization_id", "at"])
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("external_id", sa.String(length=200), nullable=True))
    op.create_index("ix_leads_org_external_id", "leads", ["organization_id", "external_id"])


def downgrade() -> None:
    op.drop_index("ix_leads_org_external_id", table_name="leads")
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("external_id")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("deactivated_at")
    op.drop_index("ix_audit_events_org_at", table_name="audit_events")
    op.drop_table("audit_events")

"""sign-in domains: people of these domains become users when they first sign in

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 14:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_domains",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_sign_in_domains_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_domains")),
        sa.UniqueConstraint("domain", name=op.f("uq_sign_in_domains_domain")),
    )
    op.create_index(
        op.f("ix_sign_in_domains_organization_id"),
        "sign_in_domains",
        ["organization_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_sign_in_domains_organization_id"), table_name="sign_in_domains")
    op.drop_table("sign_in_domains")

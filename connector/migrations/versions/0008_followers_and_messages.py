"""followers of records, and who wrote the mail sent from a record

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "followers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "organization_id",
            sa.Integer(),
            sa.ForeignKey("organizations.id", name="fk_followers_organization_id_organizations"),
            nullable=False,
            index=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("record_type", sa.String(length=20), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", name="fk_followers_user_id_users", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column(
            "contact_id",
            sa.Integer(),
            sa.ForeignKey(
                "contacts.id", name="fk_followers_contact_id_contacts", ondelete="CASCADE"
            ),
            nullable=True,
        ),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_followers"),
        sa.UniqueConstraint(
            "record_type", "record_id", "user_id", name="uq_followers_record_type_record_id_user_id"
        ),
        sa.UniqueConstraint(
            "record_type",
            "record_id",
            "contact_id",
            name="uq_followers_record_type_record_id_contact_id",
        ),
        sa.CheckConstraint(
            "(user_id IS NULL) <> (contact_id IS NULL)",
            name="ck_followers_one_of_user_or_contact",
        ),
    )
    op.create_index(
        "ix_followers_record", "followers", ["organization_id", "record_type", "record_id"]
    )
    with op.batch_alter_table("outbound_mails") as batch:
        batch.add_column(sa.Column("author_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("activity_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_outbound_mails_author_id_users", "users", ["author_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_foreign_key(
            "fk_outbound_mails_activity_id_activities",
            "activities",
            ["activity_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("outbound_mails") as batch:
        batch.drop_constraint("fk_outbound_mails_activity_id_activities", type_="foreignkey")
        batch.drop_constraint("fk_outbound_mails_author_id_users", type_="foreignkey")
        batch.drop_column("activity_id")
        batch.drop_column("author_id")
    op.drop_index("ix_followers_record", table_name="followers")
    op.drop_table("followers")

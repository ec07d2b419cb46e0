"""record lifecycle: owners, versions, archive marks, lead outcomes, and the history of changes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 10:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RECORD_TABLES = ("companies", "contacts", "leads", "tickets")


def upgrade() -> None:
    for table in ("companies", "contacts"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("owner_id", sa.Integer(), nullable=True))
            batch.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
            batch.create_foreign_key(
                f"fk_{table}_owner_id_users", "users", ["owner_id"], ["id"], ondelete="SET NULL"
            )
        op.execute(f"UPDATE {table} SET updated_at = created_at")
        with op.batch_alter_table(table) as batch:
            batch.alter_column("updated_at", nullable=False)
    for table in RECORD_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
            batch.add_column(sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
        with op.batch_alter_table(table) as batch:
            batch.alter_column("version", server_default=None)
    # Possible duplicates are found by a normalized name (connector.records.models.name_key),
    # filled here the way the model fills it: in Python, since SQLite's lower() is ASCII-only.
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(
            sa.Column("name_key", sa.String(length=200), nullable=False, server_default="")
        )
    connection = op.get_bind()
    contacts = sa.table("contacts", sa.column("id", sa.Integer), sa.column("name", sa.String))
    keys = sa.table("contacts", sa.column("id", sa.Integer), sa.column("name_key", sa.String))
    rows = connection.execute(sa.select(contacts.c.id, contacts.c.name)).all()
    for row in rows:
        key = " ".join(row.name.casefold().split())[:200]
        connection.execute(sa.update(keys).where(keys.c.id == row.id).values(name_key=key))
    with op.batch_alter_table("contacts") as batch:
        batch.alter_column("name_key", server_default=None)
    op.create_index("ix_contacts_org_name_key", "contacts", ["organization_id", "name_key"])
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("close_date", sa.Date(), nullable=True))
        batch.add_column(sa.Column("lost_reason", sa.String(length=500), nullable=True))
    op.create_table(
        "record_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("record_type", sa.String(length=20), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by_id", sa.Integer(), nullable=True),
        sa.Column("by_name", sa.String(length=200), nullable=False),
        sa.Column("field", sa.String(length=50), nullable=False),
        sa.Column("from_value", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("to_value", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("from_label", sa.String(length=500), nullable=True),
        sa.Column("to_label", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["by_id"], ["users.id"], name=op.f("fk_record_changes_by_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_record_changes_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_changes")),
    )
    op.create_index(
        "ix_record_changes_record",
        "record_changes",
        ["organization_id", "record_type", "record_id", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_record_changes_record", table_name="record_changes")
    op.drop_table("record_changes")
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("lost_reason")
        batch.drop_column("close_date")
    op.drop_index("ix_contacts_org_name_key", table_name="contacts")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("name_key")
    for table in RECORD_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("archived_at")
            batch.drop_column("version")
    for table in ("companies", "contacts"):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"fk_{table}_owner_id_users", type_="foreignkey")
            batch.drop_column("updated_at")
            batch.drop_column("owner_id")

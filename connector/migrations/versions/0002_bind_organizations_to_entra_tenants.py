"""bind organizations to Entra tenants

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 12:03:28.279529
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch mode: SQLite cannot add a constraint to an existing table in place.
    with op.batch_alter_table("organizations") as batch:
        batch.add_column(sa.Column("entra_tenant_id", sa.String(length=64), nullable=True))
        batch.create_unique_constraint(
            op.f("uq_organizations_entra_tenant_id"), ["entra_tenant_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("organizations") as batch:
        batch.drop_constraint(op.f("uq_organizations_entra_tenant_id"), type_="unique")
        batch.drop_column("entra_tenant_id")

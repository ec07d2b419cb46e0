"""the mail gateway: mail domains, aliases, inbound messages, polled mailboxes, outbound mail,
heartbeats, bouncing addresses

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _org_column(table: str) -> sa.Column[int]:
    return sa.Column(
        "organization_id",
        sa.Integer(),
        sa.ForeignKey("organizations.id", name=f"fk_{table}_organization_id_organizations"),
        nullable=False,
        index=True,
    )


def upgrade() -> None:
    with op.batch_alter_table("organizations") as batch:
        batch.add_column(sa.Column("mail_domain", sa.String(length=253), nullable=True))
        batch.add_column(
            sa.Column("lookup_generation", sa.Integer(), nullable=False, server_default="0")
        )
        batch.create_unique_constraint("uq_organizations_mail_domain", ["mail_domain"])
    with op.batch_alter_table("contact_emails") as batch:
        batch.add_column(sa.Column("bounced_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("bounce_reason", sa.String(length=500), nullable=True))

    op.create_table(
        "mail_aliases",
        sa.Column("id", sa.Integer(), primary_key=True),
        _org_column("mail_aliases"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("creates", sa.String(length=10), nullable=False),
        sa.Column(
            "owner_id",
            sa.Integer(),
            sa.ForeignKey("users.id", name="fk_mail_aliases_owner_id_users", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("accept", sa.String(length=10), nullable=False),
        sa.Column("auto_reply", sa.Boolean(), nullable=False),
        sa.Column(
            "auto_reply_template_id",
            sa.Integer(),
            sa.ForeignKey(
                "email_templates.id",
                name="fk_mail_aliases_auto_reply_template_id_email_templates",
                ondelete="SET NULL",
            ),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("id", name="pk_mail_aliases"),
        sa.UniqueConstraint("address", name="uq_mail_aliases_address"),
    )
    op.create_table(
        "mail_mailboxes",
        sa.Column("id", sa.Integer(), primary_key=True),
        _org_column("mail_mailboxes"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "alias_id",
            sa.Integer(),
            sa.ForeignKey(
                "mail_aliases.id",
                name="fk_mail_mailboxes_alias_id_mail_aliases",
                ondelete="CASCADE",
            ),
            nullable=False,
        ),
        sa.Column("imap_url", sa.String(length=1000), nullable=False),
        sa.Column("password_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("last_polled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_mail_mailboxes"),
    )
    op.create_table(
        "inbound_messages",
        sa.Column("id", sa.Integer(), primary_key=True),
        _org_column("inbound_messages"),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column(
            "mailbox_id",
            sa.Integer(),
            sa.ForeignKey(
                "mail_mailboxes.id",
                name="fk_inbound_messages_mailbox_id_mail_mailboxes",
                ondelete="SET NULL",
            ),
            nullable=True,
        ),
        sa.Column("imap_uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("imap_uid", sa.BigInteger(), nullable=True),
        sa.Column("envelope_from", sa.String(length=998), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cap_exempt", sa.Boolean(), nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=True),
        sa.Column("subject", sa.String(length=998), nullable=False),
        sa.Column("message_id", sa.String(length=998), nullable=True),
        sa.Column(
            "alias_id",
            sa.Integer(),
            sa.ForeignKey(
                "mail_aliases.id",
                name="fk_inbound_messages_alias_id_mail_aliases",
                ondelete="SET NULL",
            ),
            nullable=True,
        ),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("record_type", sa.String(length=20), nullable=True),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.Column(
            "activity_id",
            sa.Integer(),
            sa.ForeignKey(
                "activities.id",
                name="fk_inbound_messages_activity_id_activities",
                ondelete="SET NULL",
            ),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("id", name="pk_inbound_messages"),
        sa.UniqueConstraint(
            "mailbox_id",
            "imap_uidvalidity",
            "imap_uid",
            name="uq_inbound_messages_mailbox_id_imap_uidvalidity_imap_uid",
        ),
    )
    op.create_index("ix_inbound_messages_status", "inbound_messages", ["status", "received_at"])
    op.create_index(
        "ix_inbound_messages_sender",
        "inbound_messages",
        ["organization_id", "sender", "received_at"],
    )
    op.create_table(
        "outbound_mails",
        sa.Column("id", sa.Integer(), primary_key=True),
        _org_column("outbound_mails"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("record_type", sa.String(length=20), nullable=True),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.Column(
            "inbound_id",
            sa.Integer(),
            sa.ForeignKey(
                "inbound_messages.id",
                name="fk_outbound_mails_inbound_id_inbound_messages",
                ondelete="SET NULL",
            ),
            nullable=True,
        ),
        sa.Column("from_address", sa.String(length=320), nullable=False),
        sa.Column("to_addresses", sa.JSON(), nullable=False),
        sa.Column("subject", sa.String(length=998), nullable=False),
        sa.Column("message_id", sa.String(length=998), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbound_mails"),
    )
    op.create_index("ix_outbound_mails_status", "outbound_mails", ["status", "created_at"])
    op.create_table(
        "heartbeats",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_heartbeats"),
    )


def downgrade() -> None:
    op.drop_table("heartbeats")
    op.drop_index("ix_outbound_mails_status", table_name="outbound_mails")
    op.drop_table("outbound_mails")
    op.drop_index("ix_inbound_messages_sender", table_name="inbound_messages")
    op.drop_index("ix_inbound_messages_status", table_name="inbound_messages")
    op.drop_table("inbound_messages")
    op.drop_table("mail_mailboxes")
    op.drop_table("mail_aliases")
    with op.batch_alter_table("contact_emails") as batch:
        batch.drop_column("bounce_reason")
        batch.drop_column("bounced_at")
    with op.batch_alter_table("organizations") as batch:
        batch.drop_constraint("uq_organizations_mail_domain", type_="unique")
        batch.drop_column("lookup_generation")
        batch.drop_column("mail_domain")

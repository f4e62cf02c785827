"""Notify (issue #15): the notifier's cursor in the event log (per site), each alert's
escalation chain, and the outbox whose rows are the receipts (queued -> sent ->
delivered -> shown -> acknowledged, or failed / cancelled).

Revision ID: 0005
Revises: 0010

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notify_cursors",
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("site", name=op.f("pk_notify_cursors")),
    )
    op.create_table(
        "notify_chains",
        sa.Column("alert_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("priority", sa.String(8), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("addressed_to", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fired", sa.JSON(), nullable=False),
        sa.Column("hurried", sa.Boolean(), nullable=False),
        sa.Column("envelope", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("alert_id", name=op.f("pk_notify_chains")),
    )
    op.create_index(op.f("ix_notify_chains_state"), "notify_chains", ["state"])
    op.create_table(
        "notify_receipts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("recipient", sa.String(128), nullable=False),
        sa.Column("tier", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("transition", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text()),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notification", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
        sa.Column("shown_at", sa.DateTime(timezone=True)),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_receipts")),
        sa.UniqueConstraint("key", name=op.f("uq_notify_receipts_key")),
    )
    op.create_index(op.f("ix_notify_receipts_alert_id"), "notify_receipts", ["alert_id"])
    op.create_index(
        "ix_notify_receipts_state_next", "notify_receipts", ["state", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_table("notify_receipts")
    op.drop_table("notify_chains")
    op.drop_table("notify_cursors")

"""Alerts: what the alarm behaviour of the safety rules keeps (issue #13).

- `condition_cleared_at`: a high-priority alert latches when its condition clears; it
  stays active until acknowledged (IEC 60601-1-8 style).
- `latest_reading_id`, `latest_message`: an alert shows the value that raised it and the
  latest one.
- `notified_systolic`, `notified_diastolic`: the values it last sounded for; an
  acknowledged or snoozed alert that goes further past its limit sounds again.
- `snoozed_seconds`: snoozes add up, renewals included, to the protocol's cap.

ALTER TABLE ADD COLUMN on SQLite and PostgreSQL alike (the table is not rebuilt).

Revision ID: 0004
Revises: 0003

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("alerts", sa.Column("condition_cleared_at", sa.DateTime(timezone=True)))
    op.add_column("alerts", sa.Column("latest_reading_id", sa.Integer()))
    op.add_column("alerts", sa.Column("latest_message", sa.Text()))
    op.add_column("alerts", sa.Column("notified_systolic", sa.Float()))
    op.add_column("alerts", sa.Column("notified_diastolic", sa.Float()))
    op.add_column(
        "alerts",
        sa.Column("snoozed_seconds", sa.Float(), server_default=sa.text("0"), nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        for column in (
            "snoozed_seconds",
            "notified_diastolic",
            "notified_systolic",
            "latest_message",
            "latest_reading_id",
            "condition_cleared_at",
        ):
            batch.drop_column(column)

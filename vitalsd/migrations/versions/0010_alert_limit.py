"""Alerts: the limit the condition crossed, in words (`crossed_limit`).

A nurse sees, beside the value that raised an alert and the latest one, the limit it
crossed (issue #14); a phone's notification says it too (issue #15). The rules knew it
only inside the message text. Existing alerts keep NULL (no limit shown).

Revision ID: 0010
Revises: 0006

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("alerts", sa.Column("crossed_limit", sa.String(96)))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("crossed_limit")

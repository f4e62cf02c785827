"""Chairs: `retired_at`, when an admin took the chair out of service (issue #14).

A retired chair leaves the ward and takes no new session; its past sessions keep it
(their records name it), so it is marked, never deleted.

ALTER TABLE ADD COLUMN on SQLite and PostgreSQL alike (the table is not rebuilt).

Revision ID: 0008
Revises: 0009

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("chairs", sa.Column("retired_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("chairs") as batch:
        batch.drop_column("retired_at")

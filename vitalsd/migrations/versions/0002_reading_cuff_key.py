"""Readings keyed on what the cuff reported: `readings.cuff_key`, unique per cuff.

A record re-delivered after a daemon restart gets a different corrected `measured_at`
(the clock correction depends on when this daemon set the cuff's clock), so the key
(device_address, measured_at, cuff_user_id) stored it twice; the cuff's own key (raw
timestamp, user id, values, BPS 1.1 record sequence number) does not change. Nullable:
manual readings and existing rows have none, and NULLs never collide in the index.

ALTER TABLE ADD COLUMN and CREATE INDEX on both SQLite and PostgreSQL: the table is not
rebuilt, so its rows, ids and append-only triggers stay as they are.

Revision ID: 0002
Revises: 0001

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "uq_readings_device_address_cuff_key"


def upgrade() -> None:
    op.add_column("readings", sa.Column("cuff_key", sa.String(length=128), nullable=True))
    op.create_index(INDEX, "readings", ["device_address", "cuff_key"], unique=True)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="readings")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite >= 3.35 drops a column in place (the triggers do not mention it).
        op.execute("ALTER TABLE readings DROP COLUMN cuff_key")
    else:
        op.drop_column("readings", "cuff_key")

"""Side effects: when each was entered (`recorded_at`).

A severe side effect asks for a blood-pressure check a few minutes after it was
observed; one entered late was overdue the moment it was saved. The schedule now opens
that check from the later of the two. Existing rows keep NULL: read as "entered when
observed", which is what the rules assumed before.

Revision ID: 0009
Revises: 0004

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("side_effects", sa.Column("recorded_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("side_effects") as batch:
        batch.drop_column("recorded_at")

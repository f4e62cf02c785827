"""Alerts: the site that raised each (`site`), whose timers re-notify and escalate it.

With one event stream per site (0007) each site's timer leader handles its own alerts.
A session's alert could be told by its chair; a ward-level technical alarm
(`nobody_watching`, `channel_failing`) has no chair, so each site re-notified none, or
all of them would. Existing alerts become the default site's, as 0007 made every
existing chair and event.

Revision ID: 0011
Revises: 0007

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "alerts",
        sa.Column("site", sa.String(64), nullable=False, server_default="default"),
    )
    op.create_index("ix_alerts_site", "alerts", ["site"])


def downgrade() -> None:
    op.drop_index("ix_alerts_site", table_name="alerts")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("site")

"""Sites: one event stream per site of a clinic group (issue #16, "Scale by site").

- `events.site`: the stream an event belongs to; the key becomes (site, seq), so each
  site numbers its events gaplessly on its own.
- `event_counter`: one row per site, keyed by the site (the single row becomes the
  "default" site's), so writers at different sites never queue on one row.
- `chairs.site`: the site whose daemon writes for the chair.

Everything stored before is the "default" site's: a single-site clinic sees no change.
SQLite rebuilds `events` (a new primary key) and its append-only triggers with it.

Revision ID: 0007
Revises: 0005

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_SITE = "default"


def _append_only_triggers_on_events(create: bool) -> None:
    """SQLite drops a table's triggers with it: the rebuilt `events` gets them again."""
    for action in ("UPDATE", "DELETE"):
        name = f"events_no_{action.lower()}"
        if create:
            op.execute(
                f"CREATE TRIGGER {name} BEFORE {action} ON events "
                "BEGIN SELECT RAISE(ABORT, 'events is append-only'); END"
            )
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")


def _counter_table(with_site: bool) -> None:
    """Rebuild `event_counter` keyed by site (or, down, by the old single id)."""
    bind = op.get_bind()
    last = bind.execute(
        sa.text(
            "SELECT last_seq FROM event_counter" + (" WHERE site = :site" if not with_site else "")
        ),
        {"site": DEFAULT_SITE} if not with_site else {},
    ).scalar()
    op.drop_table("event_counter")
    if with_site:
        op.create_table(
            "event_counter",
            sa.Column("site", sa.String(length=64), nullable=False),
            sa.Column("last_seq", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("site", name=op.f("pk_event_counter")),
        )
        op.execute(
            sa.text("INSERT INTO event_counter (site, last_seq) VALUES (:site, :last)").bindparams(
                site=DEFAULT_SITE, last=int(last or 0)
            )
        )
    else:
        op.create_table(
            "event_counter",
            sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("last_seq", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_event_counter")),
        )
        op.execute(
            sa.text("INSERT INTO event_counter (id, last_seq) VALUES (1, :last)").bindparams(
                last=int(last or 0)
            )
        )


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    _counter_table(with_site=True)
    if sqlite:
        _append_only_triggers_on_events(create=False)
    with op.batch_alter_table("events") as batch:
        batch.add_column(
            sa.Column("site", sa.String(length=64), nullable=False, server_default=DEFAULT_SITE)
        )
        batch.drop_constraint("pk_events", type_="primary")
        batch.create_primary_key("pk_events", ["site", "seq"])
    if sqlite:
        _append_only_triggers_on_events(create=True)
    op.add_column(
        "chairs",
        sa.Column("site", sa.String(length=64), nullable=False, server_default=DEFAULT_SITE),
    )


def downgrade() -> None:
    """Back to one stream: only possible while every event is the default site's."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("chairs") as batch:
        batch.drop_column("site")
    if sqlite:
        _append_only_triggers_on_events(create=False)
    with op.batch_alter_table("events") as batch:
        batch.drop_constraint("pk_events", type_="primary")
        batch.create_primary_key("pk_events", ["seq"])
        batch.drop_column("site")
    if sqlite:
        _append_only_triggers_on_events(create=True)
    _counter_table(with_site=False)

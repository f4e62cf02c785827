"""Users: case-insensitive unique names, revocable tokens, lockout (issue #17).

- `username_key`: the case-folded name (`vitalsd.store.models.username_key`), unique, so
  `Nurse` and `nurse` cannot both exist. Filled here from the existing names; if two
  differ only in case, the upgrade stops and names them (an admin renames one first).
- `token_version`: every token carries the version it was issued under; logout,
  disable, password and role changes move it on, which ends every token at once.
- `failed_logins`, `locked_at`: failed logins in a row; the account locks after too many
  until an admin unlocks it.

ALTER TABLE ADD COLUMN and CREATE INDEX on SQLite and PostgreSQL alike (the table is not
rebuilt). `username_key` is filled in Python so it folds case exactly as the code does.

Revision ID: 0003
Revises: 0002

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "uq_users_username_key"


def upgrade() -> None:
    op.add_column("users", sa.Column("username_key", sa.String(length=128), nullable=True))
    op.add_column(
        "users",
        sa.Column("token_version", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column(
        "users",
        sa.Column("failed_logins", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column("users", sa.Column("locked_at", sa.DateTime(timezone=True), nullable=True))
    bind = op.get_bind()
    users = sa.table("users", sa.column("id"), sa.column("username"), sa.column("username_key"))
    seen: dict[str, str] = {}
    for user_id, username in bind.execute(sa.select(users.c.id, users.c.username)).all():
        key = str(username).casefold()
        if key in seen:
            raise RuntimeError(
                f"users {seen[key]!r} and {username!r} differ only in case; usernames are "
                "case-insensitive from this version: rename or delete one, then start again"
            )
        seen[key] = str(username)
        bind.execute(users.update().where(users.c.id == user_id).values(username_key=key))
    with op.batch_alter_table("users") as batch:
        batch.alter_column("username_key", existing_type=sa.String(length=128), nullable=False)
    op.create_index(INDEX, "users", ["username_key"], unique=True)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("locked_at")
        batch.drop_column("failed_logins")
        batch.drop_column("token_version")
        batch.drop_column("username_key")

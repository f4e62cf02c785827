"""Alembic environment: runs on the connection `migrate()` hands over, or on a URL."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection, text

from vitalsd.store.engine import MIGRATION_LOCK_KEY, create_engine
from vitalsd.store.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Several daemons starting at once on one database (issue #16): one migrates, the
        # others wait here, then find the schema at head. Held until this transaction ends.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_on_url(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


given = context.config.attributes.get("connection")
if given is not None:
    _run(given)
else:
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url (e.g. alembic -x) or call vitalsd's migrate()")
    asyncio.run(_run_on_url(url))

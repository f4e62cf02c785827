"""The engine factory and schema migration.

SQLite is the embedded default: a file in the data directory, WAL journal (readers never
block the writer), foreign keys on, a busy timeout instead of instant "database is
locked", and `synchronous=FULL` so a committed reading survives a power cut, not only a
killed process. PostgreSQL works with the same code through `postgresql+asyncpg://`.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import URL, Connection, event, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from vitalsd.store.models import Base

SQLITE_BUSY_TIMEOUT_MS = 15_000
MIGRATIONS = "vitalsd:migrations"
# pg_advisory_xact_lock's key for migrating ("vitalsdM" as a 64-bit integer): daemons
# starting at once on one database migrate one after the other (issue #16).
MIGRATION_LOCK_KEY = int.from_bytes(b"vitalsdM", "big")
# Readers (API reads, WebSocket snapshots, replays) share one pool, sized by the
# `database_reader_*` settings; the clinic's writer has its own connection
# (`writer_engine_for`), so a crowd of reconnecting tablets can hold every reader
# connection and ingest still writes (issue #9: the long soak starved ingest with 4335
# pool timeouts when both shared one pool).
# The clinic serialises its writes (one transaction at a time per process), so one
# connection is all its writer needs; a second could only wait on the first's locks.
WRITER_POOL_SIZE = 1
# The writer's connection, idle this long (seconds), is pinged before it is used again:
# the database may have restarted or cut it meanwhile (issue #16), and a write then
# fails with nothing done. A busy writer is never pinged.
WRITER_IDLE_PING_S = 1.0
TRANSACTION_POOLING_ADVICE = (
    "database_url goes through a pooler in transaction mode (prepared_statement_cache_size=0), "
    "where LISTEN/NOTIFY and advisory locks do not hold: set database_session_url "
    "(VITALSD_DATABASE_SESSION_URL) to a direct or session-mode address of the same database"
)


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in (
        "PRAGMA journal_mode=WAL",
        "PRAGMA foreign_keys=ON",
        f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
        "PRAGMA synchronous=FULL",
    ):
        cursor.execute(pragma)
    cursor.close()


def transaction_pooled(url: str | URL) -> bool:
    """The URL goes through a pooler in transaction mode (PgBouncer): it says so with
    SQLAlchemy's own switch, `prepared_statement_cache_size=0`."""
    query = make_url(url).query if isinstance(url, str) else url.query
    return str(query.get("prepared_statement_cache_size", "")) == "0"


def session_url_for(database_url: str, session_url: str | None) -> str:
    """The address for what needs a session of its own (LISTEN, the timer leader's
    advisory lock): refused clearly when only a transaction-mode pooler is given."""
    if session_url is not None:
        return session_url
    if transaction_pooled(database_url):
        raise ValueError(TRANSACTION_POOLING_ADVICE)
    return database_url


def _no_statement_reuse(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
    # asyncpg's statement cache off, and SQLAlchemy's own prepared statements uniquely
    # named: behind a transaction-mode pooler each statement may meet another backend.
    cparams["statement_cache_size"] = 0
    cparams["prepared_statement_name_func"] = lambda: f"__asyncpg_{uuid.uuid4()}__"


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for `sqlite+aiosqlite:///path` or `postgresql+asyncpg://...`."""
    if url.startswith("sqlite"):
        database = url.split("///", 1)[-1]
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    engine = create_async_engine(url, **kwargs)
    if transaction_pooled(url):
        event.listen(engine.sync_engine, "do_connect", _no_statement_reuse)
    return engine


def is_private_memory(url: URL) -> bool:
    """An in-memory SQLite database exists once per connection: a second engine on the
    same URL would open another, empty database."""
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def writer_engine_for(readers: AsyncEngine) -> AsyncEngine:
    """The engine of the clinic's single writer: the same database and settings as
    `readers` (WAL, `synchronous=FULL` on SQLite), its own one-connection pool."""
    if is_private_memory(readers.url):
        return readers
    engine = create_engine(
        readers.url.render_as_string(hide_password=False),
        pool_size=WRITER_POOL_SIZE,
        max_overflow=0,
        # Every write transaction ends in its own commit or rollback (the session's
        # `begin()` block in `vitalsd.clinic.unit_of_work`, also when it fails or is
        # cancelled):
        # the pool's ROLLBACK on return would be one more round trip (a thread hop on
        # aiosqlite) per write, for nothing.
        pool_reset_on_return=None,
        # Its one connection is in use all the time; a ping before each transaction
        # (BEGIN; SELECT; ROLLBACK on asyncpg) would triple a reading's round trips. A
        # connection lost meanwhile fails one transaction and is replaced (`Clinic`
        # ingests again once on a new connection).
        pool_pre_ping=False,
    )
    if not is_sqlite(engine):
        event.listen(engine.sync_engine.pool, "checkin", _note_checkin)
        event.listen(engine.sync_engine.pool, "checkout", _ping_after_idle)
    return engine


def _note_checkin(_dbapi_connection: Any, record: Any) -> None:
    record.info["checked_in_at"] = time.monotonic()


def _ping_after_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Hand out a live connection: one the driver knows closed, or that does not answer a
    ping after `WRITER_IDLE_PING_S` idle, is replaced by a fresh one (the pool's own
    reaction to `DisconnectionError`) before the transaction sends anything."""
    driver_connection = getattr(dbapi_connection, "driver_connection", None)
    if driver_connection is not None and driver_connection.is_closed():
        # Closed under us (the server ended it, the line dropped): the driver knows.
        raise DisconnectionError("the writer's connection was closed")
    idle_since = record.info.get("checked_in_at")
    if idle_since is None or time.monotonic() - idle_since < WRITER_IDLE_PING_S:
        return
    try:
        dbapi_connection.ping()
    except Exception as error:
        raise DisconnectionError(f"the writer's idle connection is gone: {error}") from error


def session_factory(engine: AsyncEngine) -> async_sessionmaker[Any]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def migrate(engine_or_url: AsyncEngine | str, revision: str = "head") -> None:
    """Create or upgrade the schema (`alembic upgrade head`); the daemon runs it on start."""
    engine = create_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade, revision)
    finally:
        if isinstance(engine_or_url, str):
            await engine.dispose()


__all__ = [
    "Base",
    "create_engine",
    "migrate",
    "session_factory",
    "sqlite_url",
    "writer_engine_for",
]

"""Dashboards watching a clinic group (issue #15, `nobody_watching` on several daemons).

Each node counts only the dashboards on its own `/ws`. While it has one, it holds a
shared PostgreSQL advisory lock (`WATCH_LOCK_KEY`) on a connection of its own; a node
with none asks `pg_locks` how many sessions hold that lock, i.e. how many nodes have a
dashboard. No table and no heartbeat: the server drops a dead node's lock with its
connection. A node that cannot reach the database reports only its own dashboards (it
may then raise `nobody_watching` wrongly, never miss it).
"""

from __future__ import annotations

import logging
from typing import Any, Final

import asyncpg

from vitalsd.store.feed import asyncpg_dsn

log = logging.getLogger(__name__)

# "vitalsdW" as a 64-bit integer (the timers lock on "vitalsdT", migrations on "vitalsdM").
WATCH_LOCK_KEY: Final = int.from_bytes(b"vitalsdW", "big")
CONNECT_TIMEOUT_S: Final = 5.0
QUERY_TIMEOUT_S: Final = 5.0
# pg_locks shows a bigint advisory key as classid (high 32 bits), objid (low), objsubid 1.
_HOLDERS = """
SELECT count(*) FROM pg_locks
WHERE locktype = 'advisory' AND granted AND objsubid = 1
  AND classid = $1::bigint::oid AND objid = $2::bigint::oid
"""


class GroupPresence:
    """`await presence.watching(local)`: this node's dashboards, or when it has none, how
    many nodes of the group have one."""

    def __init__(self, database_url: str, *, key: int = WATCH_LOCK_KEY) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._key = key
        self._connection: Any = None
        self._holding = False

    async def watching(self, local: int) -> int:
        try:
            connection = await self._connected()
            if local > 0 and not self._holding:
                await connection.execute(
                    "SELECT pg_advisory_lock_shared($1)", self._key, timeout=QUERY_TIMEOUT_S
                )
                self._holding = True
            elif local == 0 and self._holding:
                await connection.execute(
                    "SELECT pg_advisory_unlock_shared($1)", self._key, timeout=QUERY_TIMEOUT_S
                )
                self._holding = False
            if local > 0:
                return local
            holders = await connection.fetchval(
                _HOLDERS, self._key >> 32, self._key & 0xFFFFFFFF, timeout=QUERY_TIMEOUT_S
            )
            return int(holders or 0)
        except (OSError, asyncpg.PostgresError, TimeoutError) as error:
            log.warning("dashboard presence: the database is away (%s); counting this node", error)
            await self.close()
            return local

    async def _connected(self) -> Any:
        if self._connection is None or self._connection.is_closed():
            self._holding = False  # a new connection holds no lock
            self._connection = await asyncpg.connect(
                self._dsn, timeout=CONNECT_TIMEOUT_S, statement_cache_size=0
            )
        return self._connection

    async def close(self) -> None:
        connection, self._connection, self._holding = self._connection, None, False
        if connection is not None and not connection.is_closed():
            connection.terminate()  # frees the lock at once

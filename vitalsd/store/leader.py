"""One timer leader per clinic group (issue #16).

The clinic's timers (checks falling due and overdue, staleness, snooze ends, escalations)
must run somewhere even when the node that set them up is dead, and should run in one
place. Each daemon asks for a PostgreSQL session-level advisory lock on a connection of
its own: the holder runs the timers; the others stand by and ask again every
`RETRY_S`. The server frees the lock when its holder's connection ends (the process
died, the connection was cut), so a standby takes over within seconds. The holder checks
its connection every `CHECK_S` and stops its timers at once when it is lost (the lock is
gone with it).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, Final, Literal

import asyncpg

from vitalsd.store.feed import asyncpg_dsn
from vitalsd.store.models import DEFAULT_SITE

log = logging.getLogger(__name__)

# pg_advisory_lock's key for "the timers of this database's clinic group" ("vitalsdT" as
# a 64-bit integer; the migrations lock on "vitalsdM", `vitalsd.store.engine`).
TIMER_LOCK_KEY: Final = int.from_bytes(b"vitalsdT", "big")
# The notifier's (issue #15): one daemon of the group sends ("vitalsdN").
NOTIFY_LOCK_KEY: Final = int.from_bytes(b"vitalsdN", "big")
RETRY_S: Final = 1.0


def timer_lock_key(site: str) -> int:
    """The timer lock of one site (issue #16): each site's timers run on one of its own
    daemons, numbered in its own stream. The default site keeps the group's old key."""
    if site == DEFAULT_SITE:
        return TIMER_LOCK_KEY
    digest = hashlib.blake2b(f"vitalsdT:{site}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


CHECK_S: Final = 1.0
QUERY_TIMEOUT_S: Final = 5.0
CONNECT_TIMEOUT_S: Final = 5.0
RECONNECT_S: Final = 2.0
STOP_PATIENCE_S: Final = 5.0

Role = Literal["starting", "leader", "standby", "down"]


class TimerLeadership:
    """Runs `timers()` while this node holds the group's timer lock; stands by otherwise.

    `on_lead` is called when this node becomes the leader (the daemon wakes the timers
    on the other daemons' events from then on)."""

    def __init__(
        self,
        database_url: str,
        timers: Callable[[], Coroutine[Any, Any, None]],
        *,
        key: int = TIMER_LOCK_KEY,
        retry_s: float = RETRY_S,
        check_s: float = CHECK_S,
        what: str = "clinic timers",
    ) -> None:
        self._what = what
        self._dsn = asyncpg_dsn(database_url)
        self._timers = timers
        self._key = key
        self._retry_s = retry_s
        self._check_s = check_s
        self.role: Role = "starting"
        self.error: str | None = None
        self.since = datetime.now(UTC)
        self._connection: Any = None
        self._aborted = False

    def report(self) -> dict[str, Any]:
        return {"role": self.role, "since": self.since.isoformat(), "error": self.error}

    @property
    def backend_pid(self) -> int | None:
        """The server process holding (or asking for) the lock for this node."""
        connection = self._connection
        if connection is None or connection.is_closed():
            return None
        return int(connection.get_server_pid())

    def abort(self) -> None:
        """Drop the connection now (at shutdown, before the task is cancelled): the lock
        is freed at once and no statement waits on a cancel request."""
        self._aborted = True
        if self._connection is not None and not self._connection.is_closed():
            self._connection.terminate()

    def _become(self, role: Role, error: str | None = None) -> None:
        if role != self.role:
            log.info("%s: this node is now %s", self._what, role)
            self.since = datetime.now(UTC)
        self.role, self.error = role, error

    async def run(self) -> None:
        """Until cancelled: lead or stand by, reconnecting after a lost connection."""
        while True:
            connection: Any = None
            try:
                connection = await asyncpg.connect(
                    self._dsn, timeout=CONNECT_TIMEOUT_S, statement_cache_size=0
                )
                self._connection = connection
                await self._stand_by(connection)
                await self._lead(connection)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # log, say so, connect again
                if self._aborted:
                    raise asyncio.CancelledError from error  # shutting down: no alarm
                detail = f"{type(error).__name__}: {error}"
                log.warning("%s: lost the leader election's connection (%s)", self._what, detail)
                self._become("down", detail)
            finally:
                self._connection = None
                if connection is not None and not connection.is_closed():
                    connection.terminate()  # frees the lock at once if we held it
            await asyncio.sleep(RECONNECT_S)

    async def _stand_by(self, connection: Any) -> None:
        while not await connection.fetchval(
            "SELECT pg_try_advisory_lock($1)", self._key, timeout=QUERY_TIMEOUT_S
        ):
            self._become("standby")
            await asyncio.sleep(self._retry_s)

    async def _lead(self, connection: Any) -> None:
        self._become("leader")
        timers = asyncio.create_task(self._timers(), name=self._what)
        try:
            while not timers.done():
                await asyncio.wait({timers}, timeout=self._check_s)
                if not timers.done():
                    # Still connected, so still holding the lock.
                    await connection.fetchval("SELECT 1", timeout=QUERY_TIMEOUT_S)
            timers.result()  # the timers do not end on their own: say why they did
            raise RuntimeError(f"the {self._what} stopped")
        finally:
            timers.cancel()
            await asyncio.wait({timers}, timeout=STOP_PATIENCE_S)
            if timers.done() and not timers.cancelled() and timers.exception() is not None:
                log.error("%s failed", self._what, exc_info=timers.exception())
            elif not timers.done():
                log.error(
                    "%s: did not stop within %g s after losing the lead",
                    self._what,
                    STOP_PATIENCE_S,
                )

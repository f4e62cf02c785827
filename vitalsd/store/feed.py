"""Following the other daemons of a clinic group (DESIGN.md "Scale", issue #16).

Every daemon sharing a PostgreSQL database publishes the events the others commit, in
every site's stream (each site numbers its own, `vitalsd.store.streams`). The NOTIFY that
rides on each commit's counter bump says "site S's counter is at N"; the stored
events are the truth, read from the table in order (`EventBus.catch_up`). A lost LISTEN
connection (the server restarted, a backend terminated, a proxy timed out) is rebuilt
with back-off, and every (re)connection catches up from the table first, so nothing
committed meanwhile is missed. A poll of the counter on the same connection, every
`POLL_INTERVAL_S`, backs up a lost NOTIFY and notices a connection that died silently.

While the feed is not live, `/healthz` says degraded and the tablets get a live-only
`feed_status` event (`{"state": "behind"}`), so a tablet never silently stops updating.
Live-only `cuff_pressure` events cross between daemons on their own channel (small
payloads, never stored).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Literal

import asyncpg
from sqlalchemy import make_url

from vitalsd.store.events import NOTIFY_CHANNEL, Event, EventType, encode_json
from vitalsd.store.models import DEFAULT_SITE

if TYPE_CHECKING:
    from vitalsd.store.streams import Streams

log = logging.getLogger(__name__)

# Live-only events between daemons (`cuff_pressure`): not numbered, never stored.
LIVE_CHANNEL: Final = "vitalsd_live"
# Waits before each reconnection attempt (seconds); the last one repeats.
RECONNECT_DELAYS_S: Final = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
# The counter poll that backs up NOTIFY (issue #16: "a 1-2 s poll of the counter").
POLL_INTERVAL_S: Final = 1.0
QUERY_TIMEOUT_S: Final = 5.0
CONNECT_TIMEOUT_S: Final = 5.0
# `start()` waits this long for the feed to be live before the daemon carries on.
START_PATIENCE_S: Final = 10.0
STOP_PATIENCE_S: Final = 5.0
# Live-only events waiting for the connection; older ones go first (they are stale).
OUTBOX_SIZE: Final = 200
COUNTER_QUERY: Final = "SELECT site, last_seq FROM event_counter"
# Query options that belong to SQLAlchemy's asyncpg dialect, not to the server.
DIALECT_OPTIONS: Final = frozenset(
    {"prepared_statement_cache_size", "prepared_statement_name_func"}
)

FeedState = Literal["starting", "live", "behind", "down"]


def asyncpg_dsn(database_url: str) -> str:
    """`postgresql+asyncpg://...` as the DSN asyncpg itself takes."""
    url = make_url(database_url)
    query = {k: v for k, v in url.query.items() if k not in DIALECT_OPTIONS}
    return url.set(drivername="postgresql", query=query).render_as_string(hide_password=False)


def _now() -> datetime:
    return datetime.now(UTC)


class GroupFeed:
    """LISTEN/NOTIFY on a dedicated connection, kept alive, with catch-up and a poll.

    One task owns the connection: every statement on it (the poll, the live NOTIFYs
    this node sends) runs in that task, one at a time."""

    def __init__(
        self,
        streams: Streams,
        database_url: str,
        *,
        poll_interval_s: float = POLL_INTERVAL_S,
        reconnect_delays_s: tuple[float, ...] = RECONNECT_DELAYS_S,
    ) -> None:
        self._streams = streams
        self._dsn = asyncpg_dsn(database_url)
        self._poll_interval_s = poll_interval_s
        self._reconnect_delays_s = reconnect_delays_s
        # Tells this node's own live NOTIFYs from the others' (PostgreSQL delivers a
        # notification to its sender's session too).
        self.node = uuid.uuid4().hex
        self.state: FeedState = "starting"
        self.detail: str | None = None
        self.changed_at = _now()
        self.reconnects = 0
        self._notified_upto: dict[str, int] = {}
        self._read_counter = False
        self._stopping = False
        self._nudge = asyncio.Event()
        self._ready = asyncio.Event()
        self._outbox: deque[str] = deque(maxlen=OUTBOX_SIZE)
        self._task: asyncio.Task[None] | None = None
        self._connection: Any = None

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="group feed")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(START_PATIENCE_S):
                await self._ready.wait()

    async def stop(self) -> None:
        """Close the connection first (a statement in flight then fails at once; a
        cancelled one would wait on the server's answer to a cancel request), then end
        the task."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        task.cancel()
        if self._connection is not None and not self._connection.is_closed():
            self._connection.terminate()
        await asyncio.wait({task}, timeout=STOP_PATIENCE_S)
        if not task.done():
            where = io.StringIO()
            task.print_stack(file=where)
            log.warning(
                "the group feed did not stop within %g s; leaving it\n%s",
                STOP_PATIENCE_S,
                where.getvalue(),
            )

    # -- what others ask --------------------------------------------------------------------

    @property
    def is_live(self) -> bool:
        return self.state == "live"

    @property
    def backend_pid(self) -> int | None:
        """The server process of the LISTEN connection (None: not connected)."""
        connection = self._connection
        if connection is None or connection.is_closed():
            return None
        return int(connection.get_server_pid())

    def report(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "since": self.changed_at.isoformat(),
            "error": self.detail,
            "reconnects": self.reconnects,
            "published_upto": self._streams.home_bus.published_upto,
            "sites": {site: bus.published_upto for site, bus in self._streams.buses().items()},
        }

    def status_event(self) -> Event:
        """The `feed_status` event tablets get: "live", or "behind" (with why)."""
        return Event(
            None,
            EventType.FEED_STATUS,
            self.changed_at,
            {"state": "live" if self.is_live else "behind", "detail": self.detail},
        )

    def nudge(self) -> None:
        """Look at the counter now (a publish found a gap it could not fill)."""
        self._read_counter = True
        self._nudge.set()

    def share_live(self, event: Event) -> None:
        """Send a live-only event to the other daemons' tablets (dropped while the
        connection is down: it is about now, not worth replaying)."""
        payload = encode_json({"node": self.node, **event.as_json()})
        self._outbox.append(payload)
        self._nudge.set()

    # -- the connection's task ------------------------------------------------------------

    def _set_state(self, state: FeedState, detail: str | None = None) -> None:
        was_live = self.is_live
        if state == self.state and detail == self.detail:
            return
        self.state, self.detail, self.changed_at = state, detail, _now()
        if state in ("live", "down"):
            self._ready.set()
        if was_live != self.is_live or (not self.is_live and state != "starting"):
            status = self.status_event()
            for bus in self._streams.buses().values():
                bus.receive_live(status)

    async def _run(self) -> None:
        attempt = 0
        while True:
            connection: Any = None
            try:
                connection = await asyncpg.connect(
                    self._dsn, timeout=CONNECT_TIMEOUT_S, statement_cache_size=0
                )
                self._connection = connection
                connection.add_termination_listener(lambda _connection: self._nudge.set())
                await connection.add_listener(NOTIFY_CHANNEL, self._on_notify)
                await connection.add_listener(LIVE_CHANNEL, self._on_live)
                # Listening first, then reading: whatever commits after this read is
                # notified, whatever committed before it (while we were away) is read.
                await self._catch_up_all(connection)
                if attempt or self.reconnects:
                    log.info("following the group again (caught up to %s)", self._published())
                attempt = 0
                self._set_state("live")
                await self._follow(connection)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the point: log, say so, reconnect
                if self._stopping:
                    return
                detail = f"{type(error).__name__}: {error}"
                log.warning(
                    "lost the feed from the other daemons (%s); reconnecting (attempt %d)",
                    detail,
                    attempt + 1,
                )
                self._set_state("down", detail)
            finally:
                self._connection = None
                if connection is not None and not connection.is_closed():
                    connection.terminate()
            delay = self._reconnect_delays_s[min(attempt, len(self._reconnect_delays_s) - 1)]
            attempt += 1
            self.reconnects += 1
            await asyncio.sleep(delay)

    def _published(self) -> dict[str, int]:
        return {site: bus.published_upto or 0 for site, bus in self._streams.buses().items()}

    async def _catch_up_all(self, connection: Any) -> None:
        """Every site's stream, the ones that started while we were away included."""
        counters = await connection.fetch(COUNTER_QUERY, timeout=QUERY_TIMEOUT_S)
        for site, _last in counters:
            self._streams.discovered(site)
        for bus in list(self._streams.buses().values()):
            await bus.catch_up()

    async def _follow(self, connection: Any) -> None:
        """Until the connection fails: send what waits, publish what was notified, poll
        the counter when nothing came for a while."""
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation that arrives as the nudge does, and the feed would outlive
            # `stop()`.
            try:
                async with asyncio.timeout(self._poll_interval_s):
                    await self._nudge.wait()
            except TimeoutError:
                self._read_counter = True
            self._nudge.clear()
            polled, self._read_counter = self._read_counter, False
            if connection.is_closed():
                raise ConnectionError("the LISTEN connection was closed")
            while self._outbox:
                await connection.execute(
                    "SELECT pg_notify($1, $2)",
                    LIVE_CHANNEL,
                    self._outbox[0],
                    timeout=QUERY_TIMEOUT_S,
                )
                self._outbox.popleft()
            upto = dict(self._notified_upto)
            if polled:
                # The poll: a NOTIFY lost (or a gap a publish left) is found here, and a
                # connection that died without a word fails here.
                for site, last in await connection.fetch(COUNTER_QUERY, timeout=QUERY_TIMEOUT_S):
                    upto[site] = max(upto.get(site, 0), int(last))
            behind = {
                site: last
                for site, last in upto.items()
                if last > (self._streams.discovered(site).published_upto or 0)
            }
            if behind or polled:
                await self._catch_up_to(behind)

    async def _catch_up_to(self, upto: dict[str, int]) -> None:
        """Publish each site's stream up to `upto`; a failure (the readers' pool cannot
        reach the database) is logged and tried again at the next poll, the feed reported
        behind meanwhile."""
        try:
            for site, last in upto.items():
                await self._streams.discovered(site).catch_up(last)
        except Exception as error:
            detail = f"catching up failed: {type(error).__name__}: {error}"
            if self.state != "behind":
                log.warning("%s; trying again in %g s", detail, self._poll_interval_s)
            self._set_state("behind", detail)
            return
        self._set_state("live")

    def _on_notify(self, _connection: Any, pid: int, _channel: str, payload: str) -> None:
        # "site:seq" (a bare number: the default site, as before sites).
        site, _, seq = payload.rpartition(":")
        site = site or DEFAULT_SITE
        if pid == self._streams.writer_pid and site == self._streams.home:
            # This node's own commit: its unit of work publishes it right after the
            # commit; catching up from the table now would only make that wait for the
            # read (the poll still finds it, should the publish not come).
            return
        try:
            self._notified_upto[site] = max(self._notified_upto.get(site, 0), int(seq))
        except ValueError:
            log.warning(
                "ignored a NOTIFY on %s that is no sequence number: %r", NOTIFY_CHANNEL, payload
            )
        self._nudge.set()

    def _on_live(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = json.loads(payload)
            if message.get("node") == self.node:
                return
            kind = EventType(message["type"])
            if kind is not EventType.CUFF_PRESSURE:
                raise ValueError(f"{kind.value} is not shared live between daemons")
            site = str(message.get("site") or DEFAULT_SITE)
            event = Event(
                None, kind, datetime.fromisoformat(message["at"]), dict(message["data"]), site
            )
        except (ValueError, KeyError, TypeError) as error:
            log.warning("ignored a live event from another daemon: %s", error)
            return
        self._streams.discovered(site).receive_live(event)

"""Events: every state change is stored with a gapless sequence number in the same
transaction as the change, then published to in-process subscribers after commit.

A subscriber asks for everything after a sequence number and continues live with no gap
and no duplicate (this backs the WebSocket `?since=` replay, DESIGN.md "Interfaces").
Each subscriber has a bounded queue: a slow one is told it overflowed (and from which
sequence number to resume) instead of blocking the publishers.

Fan-out to many WebSocket clients (issue #9): an event is JSON-encoded once, lazily, and
the text shared by every subscriber (`Event.text`); a subscriber's type filter applies
before its queue, so unwanted events cost it nothing; the most recent events are kept in
memory, so a client resuming with a recent `since` is replayed without a database read.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, select, true, union_all
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from vitalsd.store.models import DEFAULT_SITE, EventCounter, EventRow

if TYPE_CHECKING:
    from vitalsd.store.feed import GroupFeed

log = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE = 1000
NOTIFY_CHANNEL = "vitalsd_events"
REPLAY_BATCH = 500
# Published events kept in memory for replays: two queues' worth, so a client cut off as
# too slow (or a tablet back from a short Wi-Fi gap) resumes without touching the database.
RECENT_EVENTS = 2 * DEFAULT_QUEUE_SIZE
# Concurrent replay reads from the database: a reconnect storm after a restart must leave
# connections in the pool for the cuffs' ingest (bench/RESULTS.md section 5).
REPLAY_READERS = 4


class EventType(StrEnum):
    """WebSocket event types (DESIGN.md "Interfaces")."""

    SNAPSHOT = "snapshot"
    READING = "reading"
    MEASUREMENT_FAILED = "measurement_failed"
    CUFF_PRESSURE = "cuff_pressure"
    ALERT = "alert"
    ALERT_UPDATED = "alert_updated"
    CHECK_DUE = "check_due"
    CHECK_OVERDUE = "check_overdue"
    SESSION_UPDATED = "session_updated"
    DEVICE_STATUS = "device_status"
    # An admin renamed or retired a chair (issue #14): the chair as `GET /api/chairs/{id}`
    # shows it; a tablet drops a chair with `retired_at` from its ward.
    CHAIR_UPDATED = "chair_updated"
    # Whether this node is following the other daemons of its group (issue #16): live
    # only, `{"state": "live" | "behind", "detail"}`, so a tablet's connection indicator
    # can say its node's feed is behind.
    FEED_STATUS = "feed_status"


# Sent live only, never stored, never numbered.
LIVE_ONLY = frozenset({EventType.SNAPSHOT, EventType.CUFF_PRESSURE, EventType.FEED_STATUS})


@dataclass(frozen=True)
class Event:
    """`{"seq", "type", "at", "data"}`; `seq` is None for live-only events. `site`: the
    stream it is numbered in (issue #16); sent as `"site"` only when it is not the
    default one, so a single-site clinic's events are as they were."""

    seq: int | None
    type: EventType
    at: datetime
    data: dict[str, Any]
    site: str = DEFAULT_SITE

    def as_json(self) -> dict[str, Any]:
        message = {
            "seq": self.seq,
            "type": self.type.value,
            "at": self.at.isoformat(),
            "data": self.data,
        }
        if self.site != DEFAULT_SITE:
            message["site"] = self.site
        return message

    @cached_property
    def text(self) -> str:
        """The event as sent on `/ws`, encoded once and shared by every subscriber."""
        return encode_json(self.as_json())

    @cached_property
    def utf8(self) -> bytes:
        """`text` as UTF-8 (a WebSocket text frame's payload), encoded once."""
        return self.text.encode()


def encode_json(message: dict[str, Any]) -> str:
    """Compact JSON; a NaN or infinity (not JSON, browsers refuse the whole frame) as null."""
    try:
        return json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        return json.dumps(_without_nan(message), separators=(",", ":"), ensure_ascii=False)


def _without_nan(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _without_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nan(v) for v in value]
    return value


@dataclass
class PendingEvent:
    type: EventType
    at: datetime
    data: dict[str, Any]


class SubscriberOverflow(Exception):
    """The subscriber fell behind by more than its queue: resume with `since=last_seq`."""

    def __init__(self, last_seq: int | None) -> None:
        super().__init__(
            f"subscriber fell behind; resume from seq {last_seq}"
            if last_seq is not None
            else "subscriber fell behind before its first event"
        )
        self.last_seq = last_seq


class Subscription:
    """An async iterator of events: the stored ones after `since`, then live ones.

    `types` (None: all) filters before the queue. The queue holds only live events;
    the replay is read from the bus's recent events or the table, at the reader's pace,
    up to `replay_through`: the last event published before this subscription was
    registered (every later one reaches the queue). None: not known, read until the
    table has no more.

    `direct`, when set, takes a live event at once, in the publisher's call, whenever the
    reader is waiting with nothing queued (so order is kept); it returns False when it
    cannot (the event is queued instead). A WebSocket client whose socket is writable is
    written to this way, as `websockets.broadcast` does, without waking its task.
    """

    def __init__(
        self,
        bus: EventBus,
        since: int | None,
        queue: asyncio.Queue[Event],
        *,
        types: Collection[EventType] | None = None,
        replay_through: int | None = None,
    ) -> None:
        self.bus = bus
        self.since = since
        self.queue = queue
        self.types = frozenset(types) if types is not None else None
        self.replay_through = replay_through
        self.overflowed = False
        self.last_seq = since
        self.direct: Callable[[Event], bool] | None = None
        self._waiting = False
        self._overflow = asyncio.Event()
        self._backlog: deque[Event] = deque()
        self._replaying = since is not None

    def offer(self, event: Event) -> None:
        if self.overflowed or (self.types is not None and event.type not in self.types):
            return
        if self._waiting and self.direct is not None and self.queue.empty():
            if event.seq is not None and self.last_seq is not None and event.seq <= self.last_seq:
                return  # replayed already
            if self.direct(event):
                if event.seq is not None:
                    self.last_seq = event.seq
                return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            self._overflow.set()

    async def wait_overflow(self) -> None:
        """Return once the queue has overflowed (the reader stopped keeping up)."""
        await self._overflow.wait()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        while True:
            if self._replaying and not self._backlog:
                await self._read_backlog()
            if self._backlog:
                event = self._backlog.popleft()
            else:
                if self.overflowed and self.queue.empty():
                    raise SubscriberOverflow(self.last_seq)
                self._waiting = not self._replaying
                try:
                    event = await self.queue.get()
                finally:
                    self._waiting = False
            if event.seq is not None:
                if self.last_seq is not None and event.seq <= self.last_seq:
                    continue  # replayed already
                self.last_seq = event.seq
            if self.types is not None and event.type not in self.types:
                continue  # a replayed event of a type not wanted
            return event

    async def _read_backlog(self) -> None:
        after = self.last_seq or 0
        if self.replay_through is not None and after >= self.replay_through:
            self._replaying = False
            return
        batch = self.bus.recent_after(after, REPLAY_BATCH)
        if batch is None:
            batch = await self.bus.read_stored_after(after, REPLAY_BATCH)
        if self.replay_through is not None:
            batch = [e for e in batch if e.seq is not None and e.seq <= self.replay_through]
        if not batch:
            self._replaying = False
        self._backlog.extend(batch)

    def close(self) -> None:
        self.bus._unsubscribe(self)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *_: object) -> None:
        self.close()


class EventBus:
    """Fan-out of committed events to in-process subscribers, strictly in sequence order.

    Sequence order is commit order (every writer holds the counter row until it commits),
    so when an event arrives whose predecessors were not published here (another daemon
    wrote them), they are committed already and are read from the table first. On
    PostgreSQL `listen()` learns of other daemons' commits through LISTEN/NOTIFY.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        queue_size: int = DEFAULT_QUEUE_SIZE,
        *,
        recent: int = RECENT_EVENTS,
        replay_readers: int = REPLAY_READERS,
        site: str = DEFAULT_SITE,
    ) -> None:
        self.site = site
        self._sessions = sessions
        self._queue_size = queue_size
        self._subscribers: set[Subscription] = set()
        self._by_type: dict[EventType, list[Subscription]] = {}
        self._published_upto: int | None = None
        self._order = asyncio.Lock()
        self._feed: GroupFeed | None = None
        self._followers: list[Callable[[Sequence[Event]], None]] = []
        self._recent: deque[Event] = deque(maxlen=recent)
        self._replay_readers = asyncio.Semaphore(replay_readers)

    def subscribe(
        self,
        since: int | None = None,
        *,
        types: Collection[EventType] | None = None,
        queue_size: int | None = None,
    ) -> Subscription:
        """Live from now; with `since`, every stored event after `since` first. Register
        before reading the backlog, so nothing committed meanwhile is missed. `types`:
        only events of these types (None: all)."""
        subscription = Subscription(
            self,
            since,
            asyncio.Queue(queue_size or self._queue_size),
            types=types,
            replay_through=self._published_upto,
        )
        self._subscribers.add(subscription)
        self._by_type.clear()
        if self._feed is not None and not self._feed.is_live:
            # A tablet connecting while its node cannot follow the group hears so first.
            subscription.offer(self._feed.status_event())
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscribers:
            self._subscribers.discard(subscription)
            self._by_type.clear()

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    @property
    def published_upto(self) -> int | None:
        """The last stored event this process published (None: none yet). Every event
        up to it is committed; a subscriber registered now receives every later one."""
        return self._published_upto

    def _fan_out(self, events: Iterable[Event]) -> None:
        """Hand events to every interested subscriber's bounded queue; never blocks.

        A commit's events go to one subscriber all together before the next subscriber
        gets any: the alert a severe reading raised reaches the first tablets right
        behind its reading, not after the reading has gone to every tablet (issue #9
        alert latency)."""
        group = list(events)
        for event in group:
            if event.seq is not None:
                self._remember(event)
        if len(group) == 1:
            for subscription in self._interested(group[0].type):
                subscription.offer(group[0])
            return
        types = {event.type for event in group}
        for subscription in self._subscribers:
            if subscription.types is None or not subscription.types.isdisjoint(types):
                for event in group:
                    subscription.offer(event)

    def _interested(self, type: EventType) -> list[Subscription]:
        """The subscribers that want `type`, listed once per change of subscribers (a
        `cuff_pressure` event, about one a second per inflating cuff, then costs nothing
        for the pager clients that filtered it out)."""
        listed = self._by_type.get(type)
        if listed is None:
            listed = [s for s in self._subscribers if s.types is None or type in s.types]
            self._by_type[type] = listed
        return listed

    def _remember(self, event: Event) -> None:
        assert event.seq is not None
        recent = self._recent
        if recent and recent[-1].seq != event.seq - 1:
            recent.clear()  # keep the window gapless
        recent.append(event)

    def recent_after(self, seq: int, limit: int = REPLAY_BATCH) -> list[Event] | None:
        """Up to `limit` published events after `seq` from memory; None when memory does
        not reach back to `seq + 1` (read the table instead)."""
        recent = self._recent
        if not recent:
            return None
        first = recent[0].seq
        assert first is not None
        if seq + 1 < first:
            return None
        start = seq + 1 - first
        return [recent[i] for i in range(start, min(len(recent), start + limit))]

    async def publish(self, events: Sequence[Event]) -> None:
        """Publish committed events (ascending seq), preceded by any committed elsewhere
        that this process has not published yet."""
        if not events:
            return
        async with self._order:
            first = events[0].seq
            assert first is not None
            if self._published_upto is None:
                self._published_upto = first - 1
            if first > self._published_upto + 1:
                try:
                    await self._publish_stored_upto(first - 1)
                except Exception:
                    if self._feed is None:
                        raise
                    # Committed already: the feed's next catch-up publishes them all in
                    # order, from the table (it retries until it can read it).
                    log.warning(
                        "could not read other daemons' events before seq %s; the feed will "
                        "publish them",
                        first,
                        exc_info=True,
                    )
                    self._feed.nudge()
                    return
            fresh = [e for e in events if e.seq is not None and e.seq > self._published_upto]
            self._fan_out(fresh)
            if fresh and fresh[-1].seq is not None:
                self._published_upto = fresh[-1].seq

    async def _publish_stored_upto(self, last: int) -> None:
        while self._published_upto is not None and self._published_upto < last:
            batch = await self.stored_after(self._published_upto, REPLAY_BATCH)
            batch = [e for e in batch if e.seq is not None and e.seq <= last]
            if not batch:
                return
            self._fan_out(batch)
            self._published_upto = batch[-1].seq
            for follower in self._followers:
                follower(batch)

    def follow(self, follower: Callable[[Sequence[Event]], None]) -> None:
        """Call `follower` with every batch of events other daemons committed, once they
        are published here (the timers wake on them: a session another node started
        may have the next deadline)."""
        self._followers.append(follower)

    async def catch_up(self, upto: int | None = None) -> None:
        """Publish what other daemons committed (up to `upto`, or all). Raises when the
        table cannot be read: the caller (the feed) logs it and tries again."""
        async with self._order:
            if self._published_upto is None:
                self._published_upto = await self.last_seq()
                return
            await self._publish_stored_upto(upto if upto is not None else 2**62)

    async def start_following(self) -> None:
        """Before the feed starts: what is committed now counts as published."""
        async with self._order:
            if self._published_upto is None:
                self._published_upto = await self.last_seq()

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        """Where the stream reads stored events (the readers' pool)."""
        return self._sessions

    def start_from(self, seq: int) -> None:
        """A stream new to this node: everything after `seq` is still to publish."""
        if self._published_upto is None:
            self._published_upto = seq

    def attach_feed(self, feed: GroupFeed | None) -> None:
        self._feed = feed

    @property
    def feed(self) -> GroupFeed | None:
        """The feed from the other daemons (None: one daemon alone, SQLite)."""
        return self._feed

    def feed_report(self) -> dict[str, Any] | None:
        """What `/healthz` says about the feed (None: there is none)."""
        return None if self._feed is None else self._feed.report()

    async def close(self) -> None:
        """The feed belongs to the node's `Streams`, which stops it."""
        self._feed = None

    def publish_live(self, type: EventType, at: datetime, data: dict[str, Any]) -> Event:
        """A live-only event (`cuff_pressure`): not stored, no sequence number. A
        `cuff_pressure` goes to the other daemons' tablets too (a small NOTIFY)."""
        if type not in LIVE_ONLY:
            raise ValueError(f"{type.value} events are stored: use a transaction")
        event = Event(None, type, at, data, self.site)
        self._fan_out([event])
        if self._feed is not None and type is EventType.CUFF_PRESSURE:
            self._feed.share_live(event)
        return event

    def receive_live(self, event: Event) -> None:
        """A live-only event from another daemon (or this node's feed status)."""
        self._fan_out([event])

    async def read_stored_after(self, seq: int, limit: int = REPLAY_BATCH) -> list[Event]:
        """`stored_after` for a subscriber's replay: a few at a time, so a storm of
        resuming clients cannot take every connection in the pool."""
        async with self._replay_readers:
            return await self.stored_after(seq, limit)

    async def stored_after(self, seq: int, limit: int = REPLAY_BATCH) -> list[Event]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(EventRow)
                .where(EventRow.site == self.site, EventRow.seq > seq)
                .order_by(EventRow.seq)
                .limit(limit)
            )
            return [Event(r.seq, EventType(r.type), r.at, r.data, r.site) for r in rows]

    async def last_seq(self) -> int:
        async with self._sessions() as session:
            value = await session.scalar(
                select(EventCounter.last_seq).where(EventCounter.site == self.site)
            )
            return int(value or 0)


async def events_after(
    connection: AsyncConnection | AsyncSession,
    cursors: Mapping[str, int],
    limit: int,
    *,
    types: Collection[EventType] | None = None,
) -> list[Event]:
    """Stored events of every site after the per-site cursors, for a group-wide reader
    (the notifier, an all-sites view): up to `limit` of each site, in (site, seq) order,
    so a busy site never holds back another's alerts and each site's part is gapless
    from its cursor (advance each cursor to its site's last `seq` and read again until
    nothing comes). A site not in `cursors` (one that started after the reader) is read
    from its first event. `types`: only events of these types (the notifier's alerts)."""
    table = cast(Table, EventRow.__table__)
    counters = cast(Table, EventCounter.__table__)
    sites = set(cursors) | set((await connection.execute(select(counters.c.site))).scalars())
    if not sites:
        return []
    wanted = true() if types is None else table.c.type.in_(sorted(t.value for t in types))
    parts = [
        select(table.c.site, table.c.seq, table.c.type, table.c.at, table.c.data)
        .where(table.c.site == site, table.c.seq > cursors.get(site, 0), wanted)
        .order_by(table.c.seq)
        .limit(limit)
        .subquery()
        .select()
        for site in sorted(sites)
    ]
    query = union_all(*parts) if len(parts) > 1 else parts[0]
    rows = list(await connection.execute(query))
    rows.sort(key=lambda row: (row.site, row.seq))
    return [Event(seq, EventType(kind), at, data, site) for site, seq, kind, at, data in rows]

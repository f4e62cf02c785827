"""Events: every state change is stored with a gapless sequence number in the same
transaction as the change, then published to in-process subscribers after commit.

A subscriber asks for everything after a sequence number and continues live with no gap
and no duplicate (this backs the WebSocket `?since=` replay, DESIGN.md "Interfaces").
Each subscriber has a bounded queue: a slow one is told it overflowed (and from which
sequence number to resume) instead of blocking the publishers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vitalsd.store.models import EventCounter, EventRow

DEFAULT_QUEUE_SIZE = 1000
NOTIFY_CHANNEL = "vitalsd_events"
REPLAY_BATCH = 500


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


# Sent live only, never stored, never numbered.
LIVE_ONLY = frozenset({EventType.SNAPSHOT, EventType.CUFF_PRESSURE})


@dataclass(frozen=True)
class Event:
    """`{"seq", "type", "at", "data"}`; `seq` is None for live-only events."""

    seq: int | None
    type: EventType
    at: datetime
    data: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "type": self.type.value,
            "at": self.at.isoformat(),
            "data": self.data,
        }


@dataclass
class PendingEvent:
    type: EventType
    at: datetime
    data: dict[str, Any]


async def lock_event_counter(session: AsyncSession) -> None:
    """Take the counter row's write lock first thing in a write transaction: it orders
    every writer (across processes on PostgreSQL) and, on SQLite, takes the write lock
    before any read so concurrent writers wait on the busy timeout instead of failing."""
    await session.execute(
        update(EventCounter).where(EventCounter.id == 1).values(last_seq=EventCounter.last_seq)
    )


async def store_events(session: AsyncSession, pending: Sequence[PendingEvent]) -> list[Event]:
    """Number and insert `pending` in the caller's transaction. The counter row makes
    the numbers gapless: a rolled-back transaction rolls its increment back too (a
    PostgreSQL sequence would not)."""
    if not pending:
        return []
    for item in pending:
        if item.type in LIVE_ONLY:
            raise ValueError(f"{item.type.value} events are live-only and never stored")
    result = await session.execute(
        update(EventCounter)
        .where(EventCounter.id == 1)
        .values(last_seq=EventCounter.last_seq + len(pending))
        .returning(EventCounter.last_seq)
    )
    last = int(result.scalar_one())
    first = last - len(pending) + 1
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        # Delivered at commit, to every daemon sharing the database (DESIGN.md "Scale").
        await session.execute(
            text("SELECT pg_notify(:channel, :seq)"), {"channel": NOTIFY_CHANNEL, "seq": str(last)}
        )
    events = [Event(first + i, item.type, item.at, item.data) for i, item in enumerate(pending)]
    session.add_all(EventRow(seq=e.seq, type=e.type.value, at=e.at, data=e.data) for e in events)
    await session.flush()
    return events


class SubscriberOverflow(Exception):
    """The subscriber fell behind by more than its queue: resume with `since=last_seq`."""

    def __init__(self, last_seq: int | None) -> None:
        super().__init__(
            f"subscriber fell behind; resume from seq {last_seq}"
            if last_seq is not None
            else "subscriber fell behind before its first event"
        )
        self.last_seq = last_seq


@dataclass(eq=False)
class Subscription:
    """An async iterator of events: the stored ones after `since`, then live ones."""

    bus: EventBus
    since: int | None
    queue: asyncio.Queue[Event] = field(default_factory=lambda: asyncio.Queue(DEFAULT_QUEUE_SIZE))
    overflowed: bool = False
    last_seq: int | None = None
    _backlog: list[Event] = field(default_factory=list)
    _replaying: bool = True

    def __post_init__(self) -> None:
        self.last_seq = self.since

    def offer(self, event: Event) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        while True:
            if self._replaying and not self._backlog:
                if self.since is None:
                    self._replaying = False
                else:
                    self._backlog = await self.bus.stored_after(self.last_seq or 0, REPLAY_BATCH)
                    if not self._backlog:
                        self._replaying = False
            if self._backlog:
                event = self._backlog.pop(0)
            else:
                if self.overflowed and self.queue.empty():
                    raise SubscriberOverflow(self.last_seq)
                event = await self.queue.get()
            if event.seq is not None:
                if self.last_seq is not None and event.seq <= self.last_seq:
                    continue  # replayed already
                self.last_seq = event.seq
            return event

    def close(self) -> None:
        self.bus._subscribers.discard(self)

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
        self, sessions: async_sessionmaker[AsyncSession], queue_size: int = DEFAULT_QUEUE_SIZE
    ) -> None:
        self._sessions = sessions
        self._queue_size = queue_size
        self._subscribers: set[Subscription] = set()
        self._published_upto: int | None = None
        self._order = asyncio.Lock()
        self._listener: Any = None
        self._catch_up_tasks: set[asyncio.Task[None]] = set()

    def subscribe(self, since: int | None = None) -> Subscription:
        """Live from now; with `since`, every stored event after `since` first. Register
        before reading the backlog, so nothing committed meanwhile is missed."""
        subscription = Subscription(self, since, asyncio.Queue(self._queue_size))
        self._subscribers.add(subscription)
        return subscription

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def _fan_out(self, events: Iterable[Event]) -> None:
        """Hand events to every subscriber's bounded queue; never blocks."""
        for event in events:
            for subscription in list(self._subscribers):
                subscription.offer(event)

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
                await self._publish_stored_upto(first - 1)
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

    async def catch_up(self, upto: int | None = None) -> None:
        """Publish what other daemons committed (up to `upto`, or all)."""
        async with self._order:
            if self._published_upto is None:
                self._published_upto = await self.last_seq()
                return
            await self._publish_stored_upto(upto if upto is not None else 2**62)

    async def listen(self, database_url: str) -> None:
        """PostgreSQL only: follow other daemons' events through LISTEN/NOTIFY."""
        import asyncpg

        async with self._order:
            if self._published_upto is None:
                self._published_upto = await self.last_seq()
        dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        self._listener = await asyncpg.connect(dsn)

        def notified(_connection: Any, _pid: int, _channel: str, payload: str) -> None:
            task = asyncio.get_running_loop().create_task(self.catch_up(int(payload)))
            self._catch_up_tasks.add(task)
            task.add_done_callback(self._catch_up_tasks.discard)

        await self._listener.add_listener(NOTIFY_CHANNEL, notified)

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
        for task in list(self._catch_up_tasks):
            task.cancel()

    def publish_live(self, type: EventType, at: datetime, data: dict[str, Any]) -> Event:
        """A live-only event (`cuff_pressure`): not stored, no sequence number."""
        if type not in LIVE_ONLY:
            raise ValueError(f"{type.value} events are stored: use a transaction")
        event = Event(None, type, at, data)
        self._fan_out([event])
        return event

    async def stored_after(self, seq: int, limit: int = REPLAY_BATCH) -> list[Event]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(EventRow).where(EventRow.seq > seq).order_by(EventRow.seq).limit(limit)
            )
            return [Event(r.seq, EventType(r.type), r.at, r.data) for r in rows]

    async def last_seq(self) -> int:
        async with self._sessions() as session:
            value = await session.scalar(select(EventCounter.last_seq).where(EventCounter.id == 1))
            return int(value or 0)

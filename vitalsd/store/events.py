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

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vitalsd.store.models import EventCounter, EventRow

DEFAULT_QUEUE_SIZE = 1000
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
    """In-process fan-out of committed events."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], queue_size: int = DEFAULT_QUEUE_SIZE
    ) -> None:
        self._sessions = sessions
        self._queue_size = queue_size
        self._subscribers: set[Subscription] = set()

    def subscribe(self, since: int | None = None) -> Subscription:
        """Live from now; with `since`, every stored event after `since` first. Register
        before reading the backlog, so nothing committed meanwhile is missed."""
        subscription = Subscription(self, since, asyncio.Queue(self._queue_size))
        self._subscribers.add(subscription)
        return subscription

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def publish(self, events: Iterable[Event]) -> None:
        """Hand committed (or live-only) events to every subscriber; never blocks."""
        for event in events:
            for subscription in list(self._subscribers):
                subscription.offer(event)

    def publish_live(self, type: EventType, at: datetime, data: dict[str, Any]) -> Event:
        """A live-only event (`cuff_pressure`): not stored, no sequence number."""
        if type not in LIVE_ONLY:
            raise ValueError(f"{type.value} events are stored: use a transaction")
        event = Event(None, type, at, data)
        self.publish([event])
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

"""One serialised write transaction: its change, its audit records and its events,
numbered gaplessly by its site's counter row, stored in it, and published after the
commit. A daemon writes in its own site's stream (issue #16): writers at different sites
lock different rows and never queue on each other.

Writes go through the writer's own connection (`writer_engine`). A transaction comes as
a `Tx` (the writer's memory dropped first: it loads the session states it needs afresh)
or, declared cached, as a `CachedTx`, which alone reaches the rest of the writer's
memory (`WriterMemory`) and keeps it true itself.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import BindParameter, Table, bindparam, insert, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from vitalsd.domain import AuditAction
from vitalsd.store import models
from vitalsd.store.engine import session_factory
from vitalsd.store.events import LIVE_ONLY, NOTIFY_CHANNEL, Event, EventBus, EventType, PendingEvent
from vitalsd.store.streams import Streams

from .memory import KnownDevice, WriterMemory
from .session_state import SessionState

EVENTS = cast(Table, models.EventRow.__table__)
EVENT_COUNTER = cast(Table, models.EventCounter.__table__)
SITE: BindParameter[str] = bindparam("counter_site")
LOCK_EVENT_COUNTER = (
    update(EVENT_COUNTER)
    .where(EVENT_COUNTER.c.site == SITE)
    .values(last_seq=EVENT_COUNTER.c.last_seq)
    .returning(EVENT_COUNTER.c.last_seq)
)
# SQLite: the writer knows the counter's value (it locked it, or remembers it and checks
# here that no other process moved it): no RETURNING, the row count says.
SET_EVENT_COUNTER = (
    update(EVENT_COUNTER)
    .where(EVENT_COUNTER.c.site == SITE, EVENT_COUNTER.c.last_seq == bindparam("known"))
    .values(last_seq=bindparam("last"))
)
# PostgreSQL: the bump, its NOTIFY and the events' INSERT in one statement. The NOTIFY,
# "site:seq" (the site's counter after the commit), is delivered at commit to every
# daemon sharing the database (DESIGN.md "Scale"), once (PostgreSQL folds identical
# payloads of one transaction).
STORE_EVENTS_NOTIFYING = text(
    """
    WITH bumped AS (
        UPDATE event_counter SET last_seq = last_seq + :count
        WHERE site = :counter_site
        RETURNING last_seq
    )
    INSERT INTO events (site, seq, type, at, data)
    SELECT :counter_site, bumped.last_seq - :count + e.ord, e.type, e.at, e.data
    FROM bumped,
        unnest(
            CAST(:types AS VARCHAR[]),
            CAST(:ats AS TIMESTAMP WITH TIME ZONE[]),
            CAST(:datas AS JSON[])
        ) WITH ORDINALITY AS e(type, at, data, ord)
    RETURNING seq, pg_notify(
        CAST(:channel AS TEXT),
        CAST(:counter_site AS TEXT) || ':' || CAST((SELECT last_seq FROM bumped) AS TEXT)
    )
    """
)


class MemoryOutdated(Exception):
    """Another process wrote since this one's last write: what the writer remembered
    may be outdated, so the transaction that relied on it is rolled back."""


@dataclass
class Tx:
    """One write transaction: its session, its time and the events it will store; the
    session states whose rows it has attached (`state_for`)."""

    session: AsyncSession
    now: datetime
    _memory: WriterMemory
    events: list[PendingEvent] = field(default_factory=list)
    attached: set[int] = field(default_factory=set)
    # The event counter's value: locked (and read) at the start, or (`optimistic`) as
    # the writer remembers it from its last commit, checked when events are numbered.
    known_seq: int = 0
    optimistic: bool = False

    @property
    def site(self) -> str:
        """The site this transaction writes for (its events' stream; issue #16)."""
        return self._memory.site

    async def connection(self) -> AsyncConnection:
        """The transaction's connection, for Core statements (less overhead than the
        ORM's); pending ORM changes are flushed first, to keep the order of writes."""
        if self.session.new or self.session.dirty or self.session.deleted:
            await self.session.flush()
        return await self.session.connection()

    def emit(self, type: EventType, data: dict[str, Any]) -> None:
        self.events.append(PendingEvent(type, self.now, data))

    def audit(
        self,
        actor: str,
        action: AuditAction,
        entity: str,
        entity_id: int,
        *,
        session_id: int | None = None,
        from_state: str | None = None,
        to_state: str | None = None,
        note: str | None = None,
        at: datetime | None = None,
    ) -> None:
        self.session.add(
            models.AuditRecord(
                at=at or self.now,
                actor=actor,
                action=AuditAction(action).value,
                entity=entity,
                entity_id=entity_id,
                session_id=session_id,
                from_state=from_state,
                to_state=to_state,
                note=note,
            )
        )

    def audit_session(
        self,
        actor: str,
        action: AuditAction,
        row: models.Session,
        *,
        from_state: str | None = None,
        to_state: str | None = None,
        note: str | None = None,
    ) -> None:
        """Audit what was done to a session (the entity and the session are the same)."""
        self.audit(
            actor,
            action,
            "session",
            row.id,
            session_id=row.id,
            from_state=from_state,
            to_state=to_state,
            note=note,
        )

    async def insert(self, row: object) -> None:
        """Add a new row and flush it now: it gets its id (for its audit and view)."""
        self.session.add(row)
        await self.session.flush()

    async def state_for(self, session_id: int) -> SessionState:
        """The session's state, attached to this transaction (see `WriterMemory`)."""
        return await self._memory.state_for(self.session, self.attached, session_id)

    async def reloaded_state(self, row: models.Session) -> SessionState:
        """The session's state read again after a change it does not follow."""
        return await self._memory.reloaded_state(self.session, self.attached, row)


@dataclass
class CachedTx(Tx):
    """A transaction declared cached: it reaches the writer's memory of cuffs, chairs,
    devices and kept sessions, and updates what it changes there."""

    async def cached_state(self, session_id: int | None) -> SessionState | None:
        return await self._memory.cached_state(self.session, self.attached, session_id)

    async def session_for_cuff(self, cuff: str, measured: datetime) -> int | None:
        return await self._memory.session_for_cuff(self.session, cuff, measured)

    async def open_session_for_cuff(self, cuff: str) -> int | None:
        return await self._memory.open_session_for_cuff(self.session, cuff)

    async def chair_of_cuff(self, cuff: str) -> int | None:
        return await self._memory.chair_of_cuff(self.session, cuff)

    def known_device(self, address: str) -> KnownDevice | None:
        return self._memory.device(address)

    def remember_device(self, address: str, device_id: int, last_seen_at: datetime | None) -> None:
        self._memory.remember_device(address, device_id, last_seen_at)

    async def attach_session_with_alert(self, alert_id: int) -> None:
        """The kept session holding alert `alert_id` open, attached first, so that a
        change of that alert's row is the kept row's change."""
        owner = self._memory.session_with_alert(alert_id)
        if owner is not None:
            await self.state_for(owner)

    def forget_closed_sessions(self) -> None:
        self._memory.forget_closed_sessions()


TxT = TypeVar("TxT", bound=Tx)


class UnitOfWork:
    """Serialises the writes and numbers their events; owns the writer's memory."""

    def __init__(
        self,
        writer_engine: AsyncEngine,
        bus: EventBus,
        memory: WriterMemory,
        now: Callable[[], datetime],
    ) -> None:
        """`bus`: the stream of this daemon's site (`bus.site`), where its writes are
        numbered; the other sites' streams read as it does."""
        self.streams = Streams(bus)
        self.memory = memory
        self.dialect = writer_engine.dialect.name
        self._writes: async_sessionmaker[AsyncSession] = session_factory(writer_engine)
        self._now = now
        self._lock = asyncio.Lock()
        # Set after every commit that stored events (`wake`): the timers recompute.
        self.changed = asyncio.Event()

    @property
    def site(self) -> str:
        """The site this daemon writes for."""
        return self.streams.home

    @property
    def bus(self) -> EventBus:
        """This site's stream."""
        return self.streams.home_bus

    @bus.setter
    def bus(self, bus: EventBus) -> None:
        self.streams.home_bus = bus

    def transaction(self, *, wake: bool = True) -> AbstractAsyncContextManager[Tx]:
        """A write transaction that starts from an empty memory (`Tx`)."""
        return self._open(Tx, wake=wake, cached=False, optimistic=False)

    def cached_transaction(
        self, *, wake: bool = True, optimistic: bool = False
    ) -> AbstractAsyncContextManager[CachedTx]:
        """A write transaction relying on the writer's memory (`CachedTx`).

        `optimistic` (its first statement is a write, so that on SQLite it takes the
        write lock before any read): the counter is not locked first but checked when
        the events are numbered, and `MemoryOutdated` is raised (all rolled back) if
        another process wrote since our last commit; the caller then does it again
        without `optimistic`. One statement fewer per reading."""
        return self._open(CachedTx, wake=wake, cached=True, optimistic=optimistic)

    @asynccontextmanager
    async def _open(
        self, kind: type[TxT], *, wake: bool, cached: bool, optimistic: bool
    ) -> AsyncIterator[TxT]:
        memory = self.memory
        async with self._lock:
            try:
                async with self._writes() as session:
                    async with session.begin():
                        if optimistic and memory.known_seq is not None:
                            seq = memory.known_seq
                            tx = kind(session, self._now(), memory, known_seq=seq, optimistic=True)
                        else:
                            seq = await self._lock_event_counter(session)
                            if not cached or memory.known_seq is None:
                                memory.forget_all()
                            elif seq != memory.known_seq:
                                await memory.forget_changed(session, memory.known_seq, seq)
                            tx = kind(session, self._now(), memory, known_seq=seq)
                            # Once another process writes too, never load the whole clinic
                            # under the (group-wide) counter lock: memory fills as needed.
                            if cached and not memory.remembers_clinic and not memory.others_write:
                                await memory.remember_clinic(session, tx.attached)
                        yield tx
                        stored = await self._store_events(tx)
            except MemoryOutdated:
                memory.forget_sessions(tx.attached)  # only what this attempt changed
                raise
            except BaseException:
                memory.forget_all()
                raise
            memory.known_seq = stored[-1].seq if stored else seq
            await self.bus.publish(stored)
        if wake and stored:
            self.changed.set()

    @asynccontextmanager
    async def between_transactions(self) -> AsyncIterator[AsyncSession]:
        """A look on the writer's connection between its transactions (no write): the
        cuff path never waits for a connection the readers hold."""
        async with self._lock, self._writes() as session:
            yield session

    @asynccontextmanager
    async def side_transaction(self) -> AsyncIterator[AsyncSession]:
        """A write transaction on the writer's connection, in turn with the clinic's own,
        for tables the clinic does not keep (the notifier's, issue #15). On SQLite one
        writer at a time, queued fairly here, is how nobody starves: SQLite's busy wait
        lets a writer that is never idle keep the lock from a second connection."""
        async with self._lock, self._writes() as session, session.begin():
            yield session

    def writes_first(self, cuff: str, measured: datetime) -> bool:
        """Whether a reading of `cuff` can be ingested optimistically (see `WriterMemory`):
        not while other processes are writing (it would most likely fail)."""
        return self.memory.writes_first(cuff, measured) and not self.memory.others_writing()

    async def _lock_event_counter(self, session: AsyncSession) -> int:
        """Take the site's counter row's write lock first thing in a write transaction:
        it orders every writer of the site (across processes on PostgreSQL) and, on
        SQLite, takes the write lock before any read. Its value tells whether another
        process wrote since our last commit. A site's first write makes its row."""
        connection = await session.connection()
        value = (await connection.execute(LOCK_EVENT_COUNTER, {"counter_site": self.site})).scalar()
        if value is None:
            insert_row = (
                pg_insert(EVENT_COUNTER)
                if self.dialect == "postgresql"
                else sqlite_insert(EVENT_COUNTER)
            )
            await connection.execute(
                insert_row.values(site=self.site, last_seq=0).on_conflict_do_nothing()
            )
            value = (
                await connection.execute(LOCK_EVENT_COUNTER, {"counter_site": self.site})
            ).scalar_one()
        return int(value)

    async def _store_events(self, tx: Tx) -> list[Event]:
        """Number and insert the transaction's events in Core: one counter bump (on
        PostgreSQL the NOTIFY to the other daemons rides on it) and one multi-row
        INSERT. The counter row makes the numbers gapless: a rolled-back transaction
        rolls its bump back too."""
        if not tx.events:
            return []
        for item in tx.events:
            if item.type in LIVE_ONLY:
                raise ValueError(f"{item.type.value} events are live-only and never stored")
        connection = await tx.connection()
        if self.dialect == "postgresql":
            # Known before the commit, so the feed knows this commit's NOTIFY for ours.
            raw = await connection.get_raw_connection()
            driver: Any = raw.driver_connection
            self.streams.writer_pid = int(driver.get_server_pid())
            # One round trip: the bump, its NOTIFY and the INSERT (a site 20 ms from the
            # database pays 40 ms for each; bench/RESULTS.md, "Scale by site").
            result = await connection.execute(
                STORE_EVENTS_NOTIFYING,
                {
                    "count": len(tx.events),
                    "counter_site": self.site,
                    "channel": NOTIFY_CHANNEL,
                    "types": [e.type.value for e in tx.events],
                    "ats": [e.at for e in tx.events],
                    "datas": [json.dumps(e.data) for e in tx.events],
                },
            )
            first = min(int(seq) for seq in result.scalars())
            if first - 1 != tx.known_seq:
                if tx.optimistic:  # all of it rolled back, the INSERT too
                    raise MemoryOutdated(f"event counter not at {tx.known_seq}: another writer")
                raise RuntimeError("the event counter moved while this transaction held it")
            return [
                Event(first + i, e.type, e.at, e.data, self.site) for i, e in enumerate(tx.events)
            ]
        else:
            first = tx.known_seq + 1
            result = await connection.execute(
                SET_EVENT_COUNTER,
                {
                    "known": tx.known_seq,
                    "last": tx.known_seq + len(tx.events),
                    "counter_site": self.site,
                },
            )
            if result.rowcount != 1:
                first = -1  # moved: only an optimistic transaction does not hold it
        if first - 1 != tx.known_seq:
            if tx.optimistic:
                raise MemoryOutdated(f"event counter not at {tx.known_seq}: another writer")
            raise RuntimeError("the event counter moved while this transaction held it")
        site = self.site
        events = [Event(first + i, e.type, e.at, e.data, site) for i, e in enumerate(tx.events)]
        await connection.execute(
            insert(EVENTS),
            [
                {"site": site, "seq": e.seq, "type": e.type.value, "at": e.at, "data": e.data}
                for e in events
            ],
        )
        return events

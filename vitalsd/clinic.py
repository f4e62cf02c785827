"""The clinic service: the imperative shell around the pure rules.

The API and the Bluetooth side call it; it stores, asks `vitalsd.schedule`,
`vitalsd.thresholds` and `vitalsd.alerts` what follows, stores that too, and publishes
events. Every mutating call is one transaction holding its change, its audit records and
its events (numbered gaplessly); it returns only after the commit, and publishes after
it. Domain errors are the classes of `vitalsd.errors`.

Writes go through their own connection (`writer_engine`), reads through the readers'
pool. The writer remembers what the rules need between its transactions (each open
session's facts, checks and open alerts; cuff -> chair -> session; devices), kept true
by its own writes and dropped when another process wrote (the event counter moved), when
a transaction fails, and by every write path that does not keep it (see `_transaction`):
a warm cuff reading costs three statements, as a bare INSERT of its rows would (issue #9).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time  # #16
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, func, insert, literal, make_url, or_, select, update
from sqlalchemy import Text as SQLText
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import Insert

from devices.bps import BloodPressureMeasurement, PulseRateRange
from vitalsd import views
from vitalsd.alerts import (
    DEFAULT_ESCALATION_DELAY,
    DEFAULT_MAX_SNOOZE,
    SYSTEM,
    Alert,
    AlertChange,
    AuditEntry,
    reconcile,
)
from vitalsd.domain import (
    AlertKind,
    AlertState,
    CheckKind,
    CheckState,
    Drug,
    Phase,
    Priority,
    ReadingFlag,
    ReadingSource,
    Role,
    Route,
    SessionFacts,
    SideEffect,
    mean_arterial_pressure,
    require_utc,
)
from vitalsd.domain import Dose as DoseFacts
from vitalsd.domain import Reading as ReadingFacts
from vitalsd.errors import (
    CloseCheckMissing,
    Conflict,
    DosingHoldActive,
    InvalidInput,
    NotAllowed,
    NotFound,
)
from vitalsd.protocol import DEFAULT_PRESET, Protocol, load_protocol, parse_protocol
from vitalsd.schedule import Check, CheckSchedule, derive_dose_increase, next_check
from vitalsd.settings import Settings
from vitalsd.store import models
from vitalsd.store.engine import (
    create_engine,
    is_private_memory,
    is_sqlite,
    migrate,
    session_factory,
    session_url_for,
    writer_engine_for,
)
from vitalsd.store.events import (
    LIVE_ONLY,
    NOTIFY_CHANNEL,
    Event,
    EventBus,
    EventType,
    PendingEvent,
)
from vitalsd.thresholds import BASELINE_KINDS, Finding, blood_pressure_category

log = logging.getLogger(__name__)

DEFAULT_STALE_AFTER = timedelta(minutes=30)
DEVICE_SEEN_WRITE_INTERVAL = timedelta(seconds=30)
NO_LONGER_REQUIRED = "no longer required by the protocol"
# The timer wakes this much after a deadline, so the deadline has surely passed.
TIMER_SLACK = timedelta(milliseconds=20)
CONNECTION_STATES = frozenset(
    {"unknown", "advertising", "connecting", "connected", "disconnected", "unreachable"}
)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Actor:
    """Who does something: the signed-in user (the API passes it) or the system."""

    username: str
    role: Role

    @property
    def is_clinician(self) -> bool:
        return self.role is Role.CLINICIAN


SYSTEM_ACTOR = Actor(SYSTEM, Role.ADMIN)


@dataclass
class _Tx:
    """One write transaction: its session, its time and the events it will store; the
    cached session states whose rows it has attached (`Clinic._state_for`)."""

    session: AsyncSession
    now: datetime
    events: list[PendingEvent] = field(default_factory=list)
    attached: set[int] = field(default_factory=set)
    # The event counter's value: locked (and read) at the start, or (`optimistic`) as
    # the writer remembers it from its last commit, checked when events are numbered.
    known_seq: int = 0
    optimistic: bool = False

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
        action: str,
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
                action=action,
                entity=entity,
                entity_id=entity_id,
                session_id=session_id,
                from_state=from_state,
                to_state=to_state,
                note=note,
            )
        )


# -- row <-> domain ---------------------------------------------------------------------


def _reading_facts(row: models.Reading) -> ReadingFacts:
    return ReadingFacts(
        id=row.id,
        measured_at=row.measured_at,
        systolic=row.systolic,
        diastolic=row.diastolic,
        mean_arterial_pressure=row.mean_arterial_pressure,
        pulse_rate=row.pulse_rate,
        source=ReadingSource(row.source),
        flags=frozenset(ReadingFlag(f) for f in row.flags),
        valid=row.valid,
    )


def _dose_facts(row: models.Dose) -> DoseFacts:
    return DoseFacts(
        id=row.id,
        drug=Drug(row.drug),
        amount_mg=row.amount_mg,
        route=Route(row.route),
        given_at=row.given_at,
        ended_at=row.ended_at,
        increase=row.increase,
    )


_ALERT_FIELDS = (
    "kind",
    "priority",
    "message",
    "state",
    "condition",
    "raised_at",
    "notified_at",
    "session_id",
    "chair_id",
    "reading_id",
    "check_id",
    "unverified",
    "addressed_to",
    "acknowledged_at",
    "acknowledged_by",
    "snoozed_until",
    "escalated_at",
    "resolved_at",
    "resolved_by",
    "resolution_note",
)


def _alert_of(row: models.Alert) -> Alert:
    return Alert(
        id=row.id,
        kind=AlertKind(row.kind),
        priority=Priority(row.priority),
        message=row.message,
        state=AlertState(row.state),
        condition=row.condition,
        raised_at=row.raised_at,
        notified_at=row.notified_at,
        session_id=row.session_id,
        chair_id=row.chair_id,
        reading_id=row.reading_id,
        check_id=row.check_id,
        unverified=row.unverified,
        addressed_to=Role(row.addressed_to),
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
        snoozed_until=row.snoozed_until,
        escalated_at=row.escalated_at,
        resolved_at=row.resolved_at,
        resolved_by=row.resolved_by,
        resolution_note=row.resolution_note,
    )


def _write_alert(row: models.Alert, alert: Alert) -> None:
    for name in _ALERT_FIELDS:
        value = getattr(alert, name)
        setattr(row, name, value.value if hasattr(value, "value") else value)


def _alert_view(row: models.Alert) -> views.AlertView:
    return views.AlertView(
        id=row.id,
        kind=row.kind,
        priority=row.priority,
        state=row.state,
        message=row.message,
        session_id=row.session_id,
        chair_id=row.chair_id,
        reading_id=row.reading_id,
        check_id=row.check_id,
        unverified=row.unverified,
        addressed_to=row.addressed_to,
        raised_at=row.raised_at,
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
        snoozed_until=row.snoozed_until,
        escalated_at=row.escalated_at,
        resolved_at=row.resolved_at,
        resolved_by=row.resolved_by,
        resolution_note=row.resolution_note,
    )


def _reading_view(row: models.Reading) -> views.ReadingView:
    return views.ReadingView(
        id=row.id,
        session_id=row.session_id,
        chair_id=row.chair_id,
        patient_id=row.patient_id,
        systolic=row.systolic,
        diastolic=row.diastolic,
        mean_arterial_pressure=row.mean_arterial_pressure,
        pulse_rate=row.pulse_rate,
        measured_at=row.measured_at,
        received_at=row.received_at,
        source=row.source,
        flags=tuple(row.flags),
        category=row.category,
        valid=row.valid,
        device_address=row.device_address,
        failure_reason=row.failure_reason,
        recorded_by=row.recorded_by,
    )


def _check_view(row: models.Check, chair_id: int | None = None) -> views.CheckView:
    return views.CheckView(
        id=row.id,
        session_id=row.session_id,
        key=row.key,
        kind=row.kind,
        label=row.label,
        window_start=row.window_start,
        window_end=row.window_end,
        state=row.state,
        satisfied_by=row.satisfied_by,
        waiver_reason=row.waiver_reason,
        waived_by=row.waived_by,
        required=row.required,
        chair_id=chair_id,
    )


def _dose_view(row: models.Dose) -> views.DoseView:
    return views.DoseView(
        id=row.id,
        session_id=row.session_id,
        drug=row.drug,
        amount_mg=row.amount_mg,
        route=row.route,
        given_at=row.given_at,
        ended_at=row.ended_at,
        increase=row.increase,
        increase_stated=row.increase_stated,
        flags=tuple(row.flags),
        override_reason=row.override_reason,
        recorded_by=row.recorded_by,
    )


def _patient_view(row: models.Patient) -> views.PatientView:
    return views.PatientView(
        id=row.id,
        identifier=row.identifier,
        display_name=row.display_name,
        date_of_birth=row.date_of_birth,
        created_at=row.created_at,
    )


def _device_view(row: models.Device, chair_id: int | None) -> views.DeviceView:
    return views.DeviceView(
        id=row.id,
        address=row.address,
        name=row.name,
        manufacturer=row.manufacturer,
        model=row.model,
        serial=row.serial,
        firmware=row.firmware,
        battery_percent=row.battery_percent,
        rssi=row.rssi,
        connection_state=row.connection_state,
        last_seen_at=row.last_seen_at,
        first_seen_at=row.first_seen_at,
        chair_id=chair_id,
    )


def _side_effect_view(row: models.SideEffect) -> views.SideEffectView:
    return views.SideEffectView(
        id=row.id,
        session_id=row.session_id,
        effect=row.effect,
        severity=row.severity,
        observed_at=row.observed_at,
        note=row.note,
        recorded_by=row.recorded_by,
    )


def _audit_view(row: models.AuditRecord) -> views.AuditView:
    return views.AuditView(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        entity=row.entity,
        entity_id=row.entity_id,
        session_id=row.session_id,
        from_state=row.from_state,
        to_state=row.to_state,
        note=row.note,
    )


def _user_view(row: models.User) -> views.UserView:
    return views.UserView(
        id=row.id,
        username=row.username,
        role=row.role,
        disabled=row.disabled,
        created_at=row.created_at,
        password_hash=row.password_hash,
    )


def _flags_of(measurement: BloodPressureMeasurement) -> list[str]:
    status = measurement.status
    if status is None:
        return []
    flags: list[ReadingFlag] = []
    if status.body_movement:
        flags.append(ReadingFlag.BODY_MOVEMENT)
    if status.cuff_too_loose:
        flags.append(ReadingFlag.CUFF_TOO_LOOSE)
    if status.irregular_pulse:
        flags.append(ReadingFlag.IRREGULAR_PULSE)
    if status.pulse_rate_range is not PulseRateRange.WITHIN_RANGE:
        flags.append(ReadingFlag.PULSE_RATE_RANGE)
    if status.improper_position:
        flags.append(ReadingFlag.IMPROPER_POSITION)
    return [f.value for f in flags]


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) or math.isinf(value) else value


def _cuff_key(value: str | None) -> str | None:
    """A cuff's own key of a record: opaque to us, compared exactly (never trimmed)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > models.CUFF_KEY_LENGTH:
        raise InvalidInput(
            f"cuff_key must be 1-{models.CUFF_KEY_LENGTH} characters of text, got {value!r}"
        )
    return value


def _text(value: str | None, name: str, *, required: bool = False) -> str | None:
    if value is None or not value.strip():
        if required:
            raise InvalidInput(f"{name} must not be empty")
        return None
    return value.strip()


@dataclass
class _SessionState:
    """A session as the rules see it, loaded in one go. The writer keeps it between
    transactions (`Clinic._state_for`); `alert_rows` (open alerts by condition) is
    loaded for the writer only."""

    row: models.Session
    protocol: Protocol
    schedule: CheckSchedule
    facts: SessionFacts
    check_rows: dict[str, models.Check]
    alert_rows: dict[str, models.Alert] = field(default_factory=dict)

    def add_reading(self, reading: models.Reading) -> None:
        """The writer stored `reading` in this session: the facts include it, in the
        order a reload would give (measured_at, id)."""
        readings = sorted(
            (*self.facts.readings, _reading_facts(reading)),
            key=lambda r: (r.measured_at, r.id or 0),
        )
        self.facts = replace(self.facts, readings=tuple(readings))


@dataclass(frozen=True)
class _SessionSpan:
    id: int
    started_at: datetime
    closed_at: datetime | None

    def covers(self, at: datetime) -> bool:
        return self.started_at <= at and (self.closed_at is None or self.closed_at >= at)


@dataclass(frozen=True)
class _ChairSessions:
    """A chair's open session and every session of the chair started at or after it
    (closed ones only when a session was charted with a start in the past): enough to
    find the session of any reading measured after the open session's start."""

    open_started_at: datetime
    spans: tuple[_SessionSpan, ...]

    def session_at(self, at: datetime) -> int | None:
        """The latest-started session covering `at`, as `_session_for_cuff`'s query
        picks it; only for `at` at or after the open session's start."""
        covering = [s for s in self.spans if s.covers(at)]
        return max(covering, key=lambda s: s.started_at).id if covering else None


@dataclass(frozen=True)
class _CuffRecord:
    """A cuff's record as ingest stores it; `facts` None: an error frame."""

    cuff: str
    measured_at: datetime
    facts: ReadingFacts | None
    map_value: float | None
    user_id: int
    key: str | None
    raw: bytes


class _MemoryOutdated(Exception):
    """Another process wrote since this one's last write: what the writer remembered
    may be outdated, so the transaction that relied on it is rolled back."""


@dataclass
class _KnownDevice:
    id: int
    last_seen_at: datetime | None


READINGS = cast(Table, models.Reading.__table__)
READING_COLUMNS = tuple(c.key for c in READINGS.columns if c.key != "id")
EVENTS = cast(Table, models.EventRow.__table__)
EVENT_COUNTER = cast(Table, models.EventCounter.__table__)
LOCK_EVENT_COUNTER = (
    update(EVENT_COUNTER)
    .where(EVENT_COUNTER.c.id == 1)
    .values(last_seq=EVENT_COUNTER.c.last_seq)
    .returning(EVENT_COUNTER.c.last_seq)
)
BUMP_EVENT_COUNTER = (
    update(EVENT_COUNTER)
    .where(EVENT_COUNTER.c.id == 1)
    .values(last_seq=EVENT_COUNTER.c.last_seq + bindparam("count"))
    .returning(EVENT_COUNTER.c.last_seq)
)
# SQLite: the writer knows the counter's value (it locked it, or remembers it and checks
# here that no other process moved it): no RETURNING, the row count says.
SET_EVENT_COUNTER = (
    update(EVENT_COUNTER)
    .where(EVENT_COUNTER.c.id == 1, EVENT_COUNTER.c.last_seq == bindparam("known"))
    .values(last_seq=bindparam("last"))
)
# Delivered at commit, to every daemon sharing the database (DESIGN.md "Scale").
BUMP_EVENT_COUNTER_NOTIFYING = BUMP_EVENT_COUNTER.returning(
    func.pg_notify(literal(NOTIFY_CHANNEL), sql_cast(EVENT_COUNTER.c.last_seq, SQLText))
)


class Clinic:
    """The clinic: patients, chairs, cuffs, sessions, readings, checks and alerts."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        protocols: Mapping[str, Protocol] | None = None,
        default_protocol: str = DEFAULT_PRESET,
        clock: Callable[[], datetime] = utc_now,
        escalation_delay: timedelta = DEFAULT_ESCALATION_DELAY,
        max_snooze: timedelta = DEFAULT_MAX_SNOOZE,
        stale_after: timedelta = DEFAULT_STALE_AFTER,
        bus: EventBus | None = None,
        writer_engine: AsyncEngine | None = None,
    ) -> None:
        """`engine` serves the reads (API, snapshots, replays); the writes go through
        `writer_engine` (default: a one-connection engine on the same database), so no
        number of readers holding connections makes a write wait for one."""
        self.engine = engine
        self.writer_engine = writer_engine or writer_engine_for(engine)
        self._sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
        self._writes: async_sessionmaker[AsyncSession] = session_factory(self.writer_engine)
        self._dialect = self.writer_engine.dialect.name
        # The duplicate check is the unique indexes themselves: one statement. SQLite
        # gives the new id and the row count without RETURNING (one thread hop fewer).
        self._insert_reading_once: Insert = (
            postgresql.insert(READINGS).on_conflict_do_nothing().returning(READINGS.c.id)
            if self._dialect == "postgresql"
            else sqlite.insert(READINGS).on_conflict_do_nothing()
        )
        self.bus = bus or EventBus(self._sessions)
        known = dict(protocols or {})
        for preset in ("ketamine-psychotherapy", "esketamine-rems", "iv-infusion"):
            known.setdefault(preset, load_protocol(preset))
        if default_protocol not in known:
            raise InvalidInput(f"default protocol {default_protocol!r} is not loaded")
        self.protocols = known
        self.default_protocol = default_protocol
        self._clock = clock
        self.escalation_delay = escalation_delay
        self.max_snooze = max_snooze
        self.stale_after = stale_after
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._parsed: dict[str, Protocol] = {}
        # The writer's memory of the database, valid while `_known_seq` is the event
        # counter's value (no other process wrote since) and kept so by every write
        # path (see `_transaction`): session states, cuff -> chair, chair -> sessions,
        # devices.
        self._known_seq: int | None = None
        self._states: dict[int, _SessionState] = {}
        self._chair_of_cuff: dict[str, int | None] = {}
        self._chair_sessions: dict[int, _ChairSessions | None] = {}
        self._devices: dict[str, _KnownDevice] = {}
        # True once all of it was loaded at once (`_remember_clinic`): what is not
        # remembered then does not exist (a cuff without a chair, a chair without an
        # open session, a cuff never seen).
        self._remembers_clinic = False
        self._others_write = False  # #16: another process wrote since this one started
        self._others_wrote_at = -math.inf  # #16: when we last saw it (time.monotonic())

    @classmethod
    async def open(
        cls, settings: Settings, *, clock: Callable[[], datetime] = utc_now, **kwargs: Any
    ) -> Clinic:
        """Engine from `settings` (a `vitalsd.settings.Settings`), schema migrated, the
        clinic's protocol loaded."""
        url = settings.effective_database_url
        pool: dict[str, Any] = (
            {}
            if is_private_memory(make_url(url))
            else {
                "pool_size": settings.database_reader_pool_size,
                "max_overflow": settings.database_reader_max_overflow,
            }
        )
        engine = create_engine(url, **pool)
        await migrate(engine)
        protocol = load_protocol(settings.protocol)
        clinic = cls(
            engine,
            protocols={protocol.name: protocol},
            default_protocol=protocol.name,
            clock=clock,
            escalation_delay=settings.escalation_delay,
            max_snooze=settings.max_snooze,
            stale_after=settings.stale_after,
            **kwargs,
        )
        await clinic.start(settings.database_session_url)  # #16
        return clinic

    async def start(self, session_url: str | None = None) -> None:  # #16
        """Follow other daemons' events (PostgreSQL shared by several daemons)."""
        if not is_sqlite(self.engine):
            url = self.engine.url.render_as_string(hide_password=False)  # #16
            await self.bus.listen(session_url_for(url, session_url))  # #16

    async def close(self) -> None:
        await self.bus.close()
        if self.writer_engine is not self.engine:
            await self.writer_engine.dispose()
        await self.engine.dispose()

    def now(self) -> datetime:
        return require_utc(self._clock(), "clock")

    # -- transactions -------------------------------------------------------------------

    @asynccontextmanager
    async def _transaction(
        self, *, wake: bool = True, cached: bool = False, optimistic: bool = False
    ) -> AsyncIterator[_Tx]:
        """One write transaction, serialised with every other writer; its events are
        stored in it and published after the commit, in sequence order.

        The writer's caches stay true to the database: they are dropped when another
        process wrote since our last commit (the event counter moved), when a
        transaction fails (its changes to cached rows were rolled back), and at the start
        of every transaction not declared `cached`. A `cached` one keeps them true
        itself: it reaches session rows only through `_state_for` and updates what it
        changes (ingest, manual readings, the timers, device status).

        `optimistic` (a `cached` one whose first statement is a write, so that on SQLite
        it takes the write lock before any read): the counter is not locked first but
        checked when the events are numbered, and `_MemoryOutdated` is raised (all
        rolled back) if another process wrote since our last commit; the caller then
        does it again without `optimistic`. One statement fewer per reading."""
        async with self._lock:
            try:
                async with self._writes() as session:
                    async with session.begin():
                        if optimistic and cached and self._known_seq is not None:
                            seq = self._known_seq
                            tx = _Tx(session, self.now(), known_seq=seq, optimistic=True)
                        else:
                            seq = await self._lock_event_counter(session)
                            if not cached or self._known_seq is None:  # #16
                                self._forget_all()
                            elif seq != self._known_seq:  # #16
                                await self._forget_changed(session, self._known_seq, seq)  # #16
                            tx = _Tx(session, self.now(), known_seq=seq)
                            # #16: once another process writes too, never load the whole
                            # clinic under the (group-wide) counter lock: memory fills as needed.
                            if (
                                cached and not self._remembers_clinic and not self._others_write
                            ):  # #16
                                await self._remember_clinic(tx)
                        yield tx
                        stored = await self._store_events(tx)
            except _MemoryOutdated:  # #16: only the sessions this attempt changed are in doubt
                for session_id in tx.attached:  # #16
                    self._states.pop(session_id, None)  # #16
                raise  # #16
            except BaseException:
                self._forget_all()
                raise
            self._known_seq = stored[-1].seq if stored else seq
            await self.bus.publish(stored)
        if wake and stored:
            self._wake.set()

    @staticmethod
    async def _lock_event_counter(session: AsyncSession) -> int:
        """Take the counter row's write lock first thing in a write transaction: it orders
        every writer (across processes on PostgreSQL) and, on SQLite, takes the write lock
        before any read. Its value tells whether another process wrote since our last
        commit."""
        connection = await session.connection()
        result = await connection.execute(LOCK_EVENT_COUNTER)
        return int(result.scalar_one())

    async def _store_events(self, tx: _Tx) -> list[Event]:
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
        if self._dialect == "postgresql":
            result = await connection.execute(
                BUMP_EVENT_COUNTER_NOTIFYING, {"count": len(tx.events)}
            )
            first = int(result.scalar_one()) - len(tx.events) + 1
        else:
            first = tx.known_seq + 1
            result = await connection.execute(
                SET_EVENT_COUNTER, {"known": tx.known_seq, "last": tx.known_seq + len(tx.events)}
            )
            if result.rowcount != 1:
                first = -1  # moved: only an optimistic transaction does not hold it
        if first - 1 != tx.known_seq:
            if tx.optimistic:
                raise _MemoryOutdated(f"event counter not at {tx.known_seq}: another writer")
            raise RuntimeError("the event counter moved while this transaction held it")
        events = [Event(first + i, e.type, e.at, e.data) for i, e in enumerate(tx.events)]
        await connection.execute(
            insert(EVENTS),
            [{"seq": e.seq, "type": e.type.value, "at": e.at, "data": e.data} for e in events],
        )
        return events

    def _forget_all(self) -> None:
        self._remembers_clinic = False
        self._states.clear()
        self._chair_of_cuff.clear()
        self._chair_sessions.clear()
        self._devices.clear()

    def _protocol_of(self, row: models.Session) -> Protocol:
        cached = self._parsed.get(row.protocol_toml)
        if cached is None:
            cached = parse_protocol(row.protocol_toml, f"session {row.id} protocol")
            self._parsed[row.protocol_toml] = cached
        return cached

    # -- lookups ------------------------------------------------------------------------

    @staticmethod
    async def _get(session: AsyncSession, model: type[Any], id: int, what: str) -> Any:
        row = await session.get(model, id)
        if row is None:
            raise NotFound(f"no {what} with id {id}")
        return row

    async def _load_state(
        self, session: AsyncSession, row: models.Session, *, with_alerts: bool = False
    ) -> _SessionState:
        return (await self._load_states(session, [row], with_alerts=with_alerts))[0]

    async def _load_states(
        self, session: AsyncSession, rows: Sequence[models.Session], *, with_alerts: bool = False
    ) -> list[_SessionState]:
        """The states of `rows` in a fixed number of queries, however many sessions."""
        if not rows:
            return []
        ids = [r.id for r in rows]
        births = {
            patient_id: born
            for patient_id, born in await session.execute(
                select(models.Patient.id, models.Patient.date_of_birth).where(
                    models.Patient.id.in_({r.patient_id for r in rows})
                )
            )
        }
        doses: dict[int, list[models.Dose]] = {i: [] for i in ids}
        for dose in await session.scalars(
            select(models.Dose).where(models.Dose.session_id.in_(ids)).order_by(models.Dose.id)
        ):
            doses[dose.session_id].append(dose)
        readings: dict[int, list[models.Reading]] = {i: [] for i in ids}
        for reading in await session.scalars(
            select(models.Reading)
            .where(models.Reading.session_id.in_(ids))
            .order_by(models.Reading.measured_at, models.Reading.id)
        ):
            assert reading.session_id is not None
            readings[reading.session_id].append(reading)
        checks: dict[int, dict[str, models.Check]] = {i: {} for i in ids}
        for check in await session.scalars(
            select(models.Check).where(models.Check.session_id.in_(ids))
        ):
            checks[check.session_id][check.key] = check
        alerts: dict[int, dict[str, models.Alert]] = {i: {} for i in ids}
        if with_alerts:
            for alert in await session.scalars(
                select(models.Alert)
                .where(
                    models.Alert.session_id.in_(ids),
                    models.Alert.state != AlertState.RESOLVED.value,
                )
                .order_by(models.Alert.id)
            ):
                assert alert.session_id is not None
                alerts[alert.session_id][alert.condition] = alert
        states = []
        for row in rows:
            protocol = self._protocol_of(row)
            check_rows = checks[row.id]
            facts = SessionFacts(
                started_at=row.started_at,
                course_session=row.course_session,
                doses=tuple(_dose_facts(d) for d in doses[row.id]),
                readings=tuple(_reading_facts(r) for r in readings[row.id]),
                waivers=tuple(
                    (c.key, c.waiver_reason)
                    for c in check_rows.values()
                    if c.waived_by is not None and c.waiver_reason is not None
                ),
                closed_at=row.closed_at,
                date_of_birth=births.get(row.patient_id),
            )
            states.append(
                _SessionState(
                    row, protocol, CheckSchedule(protocol), facts, check_rows, alerts[row.id]
                )
            )
        return states

    async def _state_for(self, tx: _Tx, session_id: int) -> _SessionState:
        """The writer's state of a session, attached to `tx`: kept from an earlier
        transaction, or loaded (and kept). Call it before any other query in `tx` that
        could load the session's rows, so that they are the kept ones."""
        state = self._states.get(session_id)
        if state is None:
            row = await self._get(tx.session, models.Session, session_id, "session")
            state = await self._load_state(tx.session, row, with_alerts=True)
            self._states[session_id] = state
        elif session_id not in tx.attached:
            tx.session.add(state.row)
            tx.session.add_all(state.check_rows.values())
            tx.session.add_all(state.alert_rows.values())
        tx.attached.add(session_id)
        return state

    async def _remember_clinic(self, tx: _Tx) -> None:
        """Load at once what the writer needs of the whole clinic, in a fixed number of
        queries (not a few per session on each one's first reading): every cuff's chair,
        every open session's state and its chair's sessions, every device."""
        session = tx.session
        for session_id in list(self._states):
            await self._state_for(tx, session_id)  # attached first: the query finds them
        chairs = await session.execute(
            select(models.Chair.cuff_address, models.Chair.id).where(
                models.Chair.cuff_address.is_not(None)
            )
        )
        for cuff, chair_id in chairs:
            if cuff is not None:
                self._chair_of_cuff.setdefault(cuff, chair_id)
        open_rows = list(
            await session.scalars(
                select(models.Session).where(
                    models.Session.closed_at.is_(None), models.Session.id.not_in(self._states)
                )
            )
        )
        for state in await self._load_states(session, open_rows, with_alerts=True):
            self._states[state.row.id] = state
            tx.attached.add(state.row.id)
        opened = {s.row.chair_id: s.row for s in self._states.values() if s.row.closed_at is None}
        later: dict[int, list[_SessionSpan]] = {chair_id: [] for chair_id in opened}
        if opened:
            closed = await session.execute(
                select(
                    models.Session.chair_id,
                    models.Session.id,
                    models.Session.started_at,
                    models.Session.closed_at,
                ).where(
                    models.Session.chair_id.in_(opened),
                    models.Session.closed_at.is_not(None),
                    models.Session.started_at >= min(r.started_at for r in opened.values()),
                )
            )
            for chair_id, session_id, started_at, closed_at in closed:
                if started_at >= opened[chair_id].started_at:
                    later[chair_id].append(_SessionSpan(session_id, started_at, closed_at))
        for chair_id, row in opened.items():
            spans = (_SessionSpan(row.id, row.started_at, None), *later[chair_id])
            self._chair_sessions[chair_id] = _ChairSessions(row.started_at, spans)
        devices = await session.execute(
            select(models.Device.address, models.Device.id, models.Device.last_seen_at)
        )
        for address, device_id, last_seen_at in devices:
            self._devices.setdefault(address, _KnownDevice(device_id, last_seen_at))
        self._remembers_clinic = True

    async def _reevaluated_view(self, tx: _Tx, row: models.Session) -> views.SessionView:
        """Re-evaluate a session a user changed and return it (always announced)."""
        view = await self._reevaluate(tx, await self._reloaded_state(tx, row), force_event=True)
        assert view is not None  # forced: the event and its view are always made
        return view

    async def _reloaded_state(self, tx: _Tx, row: models.Session) -> _SessionState:
        """The state of `row` read again in `tx`, after a change the kept state does not
        follow (a dose, a waiver, a close): rows already in `tx` are the same objects."""
        self._states.pop(row.id, None)
        return await self._state_for(tx, row.id)

    def _session_view(self, state: _SessionState, now: datetime) -> views.SessionView:
        row = state.row
        baseline = state.schedule.baseline(state.facts)
        upcoming = next_check(
            c for c in state.schedule.checks(state.facts, now) if c.key in state.check_rows
        )
        valid_times = [r.measured_at for r in state.facts.readings if r.valid]
        return views.SessionView(
            id=row.id,
            patient_id=row.patient_id,
            chair_id=row.chair_id,
            protocol=row.protocol,
            phase=row.phase,
            course_session=row.course_session,
            started_at=row.started_at,
            started_by=row.started_by,
            closed_at=row.closed_at,
            closed_by=row.closed_by,
            close_reason=row.close_reason,
            baseline=None
            if baseline is None
            else views.BaselineView(
                baseline.systolic, baseline.diastolic, baseline.confirmed, baseline.reading_ids
            ),
            next_check=None
            if upcoming is None
            else _check_view(state.check_rows[upcoming.key], row.chair_id),
            last_reading_at=max(valid_times, default=None),
        )

    # -- patients, chairs, users ----------------------------------------------------------

    async def create_patient(
        self, identifier: str, display_name: str, date_of_birth: date, *, by: Actor
    ) -> views.PatientView:
        ident = _text(identifier, "identifier", required=True)
        name = _text(display_name, "display_name", required=True)
        async with self._transaction() as tx:
            if date_of_birth > tx.now.date():
                raise InvalidInput("date_of_birth is in the future")
            exists = await tx.session.scalar(
                select(models.Patient.id).where(models.Patient.identifier == ident)
            )
            if exists is not None:
                raise Conflict(f"a patient with identifier {ident!r} exists (id {exists})")
            row = models.Patient(
                identifier=ident, display_name=name, date_of_birth=date_of_birth, created_at=tx.now
            )
            tx.session.add(row)
            await tx.session.flush()
            tx.audit(by.username, "created", "patient", row.id)
            return _patient_view(row)

    async def get_patient(self, patient_id: int) -> views.PatientView:
        async with self._sessions() as session:
            return _patient_view(await self._get(session, models.Patient, patient_id, "patient"))

    async def list_patients(self) -> list[views.PatientView]:
        async with self._sessions() as session:
            rows = await session.scalars(select(models.Patient).order_by(models.Patient.id))
            return [_patient_view(r) for r in rows]

    async def create_chair(self, name: str, *, by: Actor) -> views.ChairView:
        label = _text(name, "name", required=True)
        async with self._transaction() as tx:
            exists = await tx.session.scalar(
                select(models.Chair.id).where(models.Chair.name == label)
            )
            if exists is not None:
                raise Conflict(f"a chair named {label!r} exists (id {exists})")
            row = models.Chair(name=label, cuff_address=None, created_at=tx.now)
            tx.session.add(row)
            await tx.session.flush()
            tx.audit(by.username, "created", "chair", row.id)
            return views.ChairView(row.id, row.name, None, None)

    async def _open_session_of_chair(
        self, session: AsyncSession, chair_id: int
    ) -> models.Session | None:
        result = await session.scalars(
            select(models.Session).where(
                models.Session.chair_id == chair_id, models.Session.closed_at.is_(None)
            )
        )
        return result.first()

    async def list_chairs(self) -> list[views.ChairView]:
        async with self._sessions() as session:
            chairs = list(await session.scalars(select(models.Chair).order_by(models.Chair.id)))
            open_sessions = {
                s.chair_id: s.id
                for s in await session.scalars(
                    select(models.Session).where(models.Session.closed_at.is_(None))
                )
            }
            return [
                views.ChairView(c.id, c.name, c.cuff_address, open_sessions.get(c.id))
                for c in chairs
            ]

    async def assign_cuff(
        self, chair_id: int, address: str | None, *, by: Actor
    ) -> views.ChairView:
        """Bind a cuff to a chair (None unbinds). A chair has at most one cuff and a cuff
        one chair: a cuff moves from its old chair unless that chair is in a session."""
        cuff = None if address is None else _text(address, "address", required=True)
        async with self._transaction() as tx:
            chair = await self._get(tx.session, models.Chair, chair_id, "chair")
            if cuff is not None:
                cuff = cuff.upper()
                holder = await tx.session.scalar(
                    select(models.Chair).where(
                        models.Chair.cuff_address == cuff, models.Chair.id != chair_id
                    )
                )
                if holder is not None:
                    if await self._open_session_of_chair(tx.session, holder.id) is not None:
                        raise Conflict(
                            f"cuff {cuff} is in use on chair {holder.name!r}, which has an "
                            "open session: close it or unassign the cuff there first"
                        )
                    holder.cuff_address = None
                    await tx.session.flush()
                    tx.audit(by.username, "cuff_unassigned", "chair", holder.id, note=cuff)
                device = await self._ensure_device(tx, cuff)
            previous = chair.cuff_address
            chair.cuff_address = cuff
            await tx.session.flush()
            tx.audit(
                by.username,
                "cuff_assigned" if cuff else "cuff_unassigned",
                "chair",
                chair.id,
                from_state=previous,
                to_state=cuff,
            )
            if previous is not None and previous != cuff:  # #16: every daemon forgets its chair
                released = await self._ensure_device(tx, previous)  # #16
                tx.emit(EventType.DEVICE_STATUS, _device_view(released, None).as_dict())  # #16
            open_session = await self._open_session_of_chair(tx.session, chair.id)
            if cuff is not None:
                tx.emit(EventType.DEVICE_STATUS, _device_view(device, chair.id).as_dict())
            return views.ChairView(
                chair.id,
                chair.name,
                chair.cuff_address,
                open_session.id if open_session else None,
            )

    async def create_user(
        self, username: str, password_hash: str, role: Role, *, by: Actor = SYSTEM_ACTOR
    ) -> views.UserView:
        name = _text(username, "username", required=True)
        async with self._transaction(wake=False) as tx:
            exists = await tx.session.scalar(
                select(models.User.id).where(models.User.username == name)
            )
            if exists is not None:
                raise Conflict(f"user {name!r} exists")
            row = models.User(
                username=name,
                password_hash=password_hash,
                role=Role(role).value,
                disabled=False,
                created_at=tx.now,
            )
            tx.session.add(row)
            await tx.session.flush()
            tx.audit(by.username, "created", "user", row.id, to_state=row.role)
            return _user_view(row)

    async def get_user(self, username: str) -> views.UserView:
        async with self._sessions() as session:
            row = await session.scalar(select(models.User).where(models.User.username == username))
            if row is None:
                raise NotFound(f"no user {username!r}")
            return _user_view(row)

    async def list_users(self) -> list[views.UserView]:
        async with self._sessions() as session:
            return [
                _user_view(r)
                for r in await session.scalars(select(models.User).order_by(models.User.id))
            ]

    async def set_user_disabled(
        self, username: str, disabled: bool, *, by: Actor
    ) -> views.UserView:
        async with self._transaction(wake=False) as tx:
            row = await tx.session.scalar(
                select(models.User).where(models.User.username == username)
            )
            if row is None:
                raise NotFound(f"no user {username!r}")
            row.disabled = disabled
            tx.audit(by.username, "disabled" if disabled else "enabled", "user", row.id)
            return _user_view(row)

    # -- sessions -------------------------------------------------------------------------

    async def start_session(
        self,
        patient_id: int,
        chair_id: int,
        *,
        by: Actor,
        protocol: str | None = None,
        started_at: datetime | None = None,
        course_session: int | None = None,
    ) -> views.SessionView:
        """Check a patient in on a chair. `started_at` in the past charts a session begun
        before it was entered; `course_session` (1 = first) defaults to the count of the
        patient's sessions so far plus one."""
        name = protocol or self.default_protocol
        chosen = self.protocols.get(name)
        if chosen is None:
            raise InvalidInput(f"unknown protocol {name!r} (one of {', '.join(self.protocols)})")
        if course_session is not None and course_session < 1:
            raise InvalidInput("course_session counts from 1")
        async with self._transaction() as tx:
            start = tx.now if started_at is None else require_utc(started_at, "started_at")
            if start > tx.now:
                raise InvalidInput("started_at is in the future")
            patient = await self._get(tx.session, models.Patient, patient_id, "patient")
            chair = await self._get(tx.session, models.Chair, chair_id, "chair")
            busy = await self._open_session_of_chair(tx.session, chair.id)
            if busy is not None:
                raise Conflict(f"chair {chair.name!r} has an open session (id {busy.id})")
            already = await tx.session.scalar(
                select(models.Session.id).where(
                    models.Session.patient_id == patient.id, models.Session.closed_at.is_(None)
                )
            )
            if already is not None:
                raise Conflict(f"the patient is in an open session (id {already})")
            if course_session is None:
                earlier = await tx.session.scalar(
                    select(func.count(models.Session.id)).where(
                        models.Session.patient_id == patient.id
                    )
                )
                course_session = int(earlier or 0) + 1
            row = models.Session(
                patient_id=patient.id,
                chair_id=chair.id,
                protocol=chosen.name,
                protocol_toml=chosen.source_text,
                phase=Phase.CHECKED_IN.value,
                course_session=course_session,
                started_at=start,
                started_by=by.username,
            )
            tx.session.add(row)
            await tx.session.flush()
            tx.audit(
                by.username, "started", "session", row.id, session_id=row.id, to_state=row.phase
            )
            return await self._reevaluated_view(tx, row)

    async def get_session(self, session_id: int) -> views.SessionView:
        async with self._sessions() as session:
            row = await self._get(session, models.Session, session_id, "session")
            state = await self._load_state(session, row)
            return self._session_view(state, self.now())

    async def list_sessions(
        self,
        *,
        open_only: bool = False,
        patient_id: int | None = None,
        chair_id: int | None = None,
        limit: int = 200,
    ) -> list[views.SessionView]:
        async with self._sessions() as session:
            query = select(models.Session).order_by(models.Session.id.desc()).limit(limit)
            if open_only:
                query = query.where(models.Session.closed_at.is_(None))
            if patient_id is not None:
                query = query.where(models.Session.patient_id == patient_id)
            if chair_id is not None:
                query = query.where(models.Session.chair_id == chair_id)
            now = self.now()
            rows = list(await session.scalars(query))
            return [self._session_view(s, now) for s in await self._load_states(session, rows)]

    async def record_dose(
        self,
        session_id: int,
        *,
        drug: Drug | str,
        amount_mg: float,
        route: Route | str,
        by: Actor,
        given_at: datetime | None = None,
        ended_at: datetime | None = None,
        increase: bool | None = None,
        override_reason: str | None = None,
    ) -> views.DoseView:
        """Record a dose. Refused (`DosingHoldActive`) while a dosing hold stands, unless
        a clinician overrides it with a reason; accepted but flagged `no_baseline` without
        a baseline reading. `increase` None: derived from the previous session."""
        try:
            drug_value, route_value = Drug(drug), Route(route)
        except ValueError as error:
            raise InvalidInput(str(error)) from None
        if not (isinstance(amount_mg, int | float) and math.isfinite(amount_mg) and amount_mg > 0):
            raise InvalidInput(f"amount_mg must be a positive number, got {amount_mg!r}")
        reason = _text(override_reason, "override_reason")
        async with self._transaction() as tx:
            row = await self._get(tx.session, models.Session, session_id, "session")
            if row.closed_at is not None:
                raise Conflict("the session is closed")
            given = tx.now if given_at is None else require_utc(given_at, "given_at")
            if given > tx.now:
                raise InvalidInput("given_at is in the future")
            if given < row.started_at:
                raise InvalidInput("given_at is before the session started")
            ended = None if ended_at is None else require_utc(ended_at, "ended_at")
            if ended is not None and (ended < given or ended > tx.now):
                raise InvalidInput("ended_at must be after given_at and not in the future")
            holds = list(
                await tx.session.scalars(
                    select(models.Alert).where(
                        models.Alert.session_id == row.id,
                        models.Alert.kind == AlertKind.DOSING_HOLD.value,
                        models.Alert.state.in_([AlertState.ACTIVE.value, AlertState.SNOOZED.value]),
                    )
                )
            )
            flags: list[str] = []
            if holds:
                if reason is None or not by.is_clinician:
                    raise DosingHoldActive(
                        "a dosing hold stands (baseline at or above the hold threshold): a "
                        "clinician acknowledges it, or overrides it with a reason"
                    )
                flags.append("hold_overridden")
                overrides = []
                for hold in holds:
                    before = _alert_of(hold)
                    after, audit = before.acknowledge(by.username, tx.now)
                    note = f"dosing hold overridden: {reason}"
                    overrides.append(AlertChange(before, after, replace(audit, note=note)))
                await self._apply_alert_changes(
                    tx, overrides, {hold.condition: hold for hold in holds}
                )
            state = await self._reloaded_state(tx, row)
            if state.protocol.baseline.required and state.schedule.dose_lacks_baseline(
                state.facts, given
            ):
                flags.append("no_baseline")
            stated = increase is not None
            if increase is None:
                increase = await self._derive_increase(tx.session, row, drug_value, amount_mg)
            dose = models.Dose(
                session_id=row.id,
                drug=drug_value.value,
                amount_mg=float(amount_mg),
                route=route_value.value,
                given_at=given,
                ended_at=ended,
                increase=increase,
                increase_stated=stated,
                flags=flags,
                override_reason=reason if holds else None,
                recorded_by=by.username,
                recorded_at=tx.now,
            )
            tx.session.add(dose)
            await tx.session.flush()
            tx.audit(
                by.username,
                "dose_recorded",
                "dose",
                dose.id,
                session_id=row.id,
                note=f"{drug_value.value} {amount_mg:g} mg {route_value.value}"
                + (f"; hold overridden: {reason}" if holds else "")
                + ("; no baseline" if "no_baseline" in flags else ""),
            )
            await self._reevaluate(tx, await self._reloaded_state(tx, row), force_event=True)
            return _dose_view(dose)

    async def _derive_increase(
        self, session: AsyncSession, row: models.Session, drug: Drug, amount_mg: float
    ) -> bool:
        so_far = await session.scalar(
            select(func.coalesce(func.sum(models.Dose.amount_mg), 0.0)).where(
                models.Dose.session_id == row.id, models.Dose.drug == drug.value
            )
        )
        previous = await session.scalar(
            select(models.Session.id)
            .join(models.Dose, models.Dose.session_id == models.Session.id)
            .where(
                models.Session.patient_id == row.patient_id,
                models.Session.id != row.id,
                models.Session.started_at < row.started_at,
                models.Dose.drug == drug.value,
            )
            .order_by(models.Session.started_at.desc())
            .limit(1)
        )
        previous_total = None
        if previous is not None:
            previous_total = await session.scalar(
                select(func.sum(models.Dose.amount_mg)).where(
                    models.Dose.session_id == previous, models.Dose.drug == drug.value
                )
            )
        return derive_dose_increase(
            None if previous_total is None else float(previous_total),
            float(so_far or 0.0),
            float(amount_mg),
        )

    async def stop_infusion(
        self, session_id: int, dose_id: int, *, by: Actor, at: datetime | None = None
    ) -> views.DoseView:
        async with self._transaction() as tx:
            row = await self._get(tx.session, models.Session, session_id, "session")
            dose = await self._get(tx.session, models.Dose, dose_id, "dose")
            if dose.session_id != row.id:
                raise NotFound(f"dose {dose_id} is not in session {session_id}")
            if dose.ended_at is not None:
                raise Conflict("the infusion was stopped already")
            stop = tx.now if at is None else require_utc(at, "at")
            if stop < dose.given_at or stop > tx.now:
                raise InvalidInput("the stop must be after the start and not in the future")
            dose.ended_at = stop
            tx.audit(by.username, "infusion_stopped", "dose", dose.id, session_id=row.id)
            await self._reevaluate(tx, await self._reloaded_state(tx, row), force_event=True)
            return _dose_view(dose)

    async def list_doses(self, session_id: int) -> list[views.DoseView]:
        async with self._sessions() as session:
            await self._get(session, models.Session, session_id, "session")
            rows = await session.scalars(
                select(models.Dose)
                .where(models.Dose.session_id == session_id)
                .order_by(models.Dose.given_at)
            )
            return [_dose_view(r) for r in rows]

    async def record_side_effect(
        self,
        session_id: int,
        *,
        effect: SideEffect | str,
        severity: int,
        by: Actor,
        observed_at: datetime | None = None,
        note: str | None = None,
    ) -> views.SideEffectView:
        try:
            effect_value = SideEffect(effect)
        except ValueError:
            allowed = ", ".join(e.value for e in SideEffect)
            raise InvalidInput(f"unknown side effect {effect!r} (one of {allowed})") from None
        if isinstance(severity, bool) or not isinstance(severity, int) or not 0 <= severity <= 3:
            raise InvalidInput(f"severity is 0 (none) to 3 (severe), got {severity!r}")
        async with self._transaction() as tx:
            row = await self._get(tx.session, models.Session, session_id, "session")
            seen = tx.now if observed_at is None else require_utc(observed_at, "observed_at")
            if seen > tx.now:
                raise InvalidInput("observed_at is in the future")
            effect_row = models.SideEffect(
                session_id=row.id,
                effect=effect_value.value,
                severity=severity,
                observed_at=seen,
                note=_text(note, "note"),
                recorded_by=by.username,
            )
            tx.session.add(effect_row)
            await tx.session.flush()
            tx.audit(
                by.username,
                "side_effect",
                "session",
                row.id,
                session_id=row.id,
                note=f"{effect_value.value} severity {severity}",
            )
            state = await self._load_state(tx.session, row)
            tx.emit(EventType.SESSION_UPDATED, self._session_view(state, tx.now).as_dict())
            return _side_effect_view(effect_row)

    async def list_side_effects(self, session_id: int) -> list[views.SideEffectView]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(models.SideEffect)
                .where(models.SideEffect.session_id == session_id)
                .order_by(models.SideEffect.observed_at)
            )
            return [_side_effect_view(r) for r in rows]

    async def waive_check(self, check_id: int, reason: str, *, by: Actor) -> views.CheckView:
        """Waive a check with a reason. The close-of-session check is the clinician's."""
        why = _text(reason, "reason", required=True)
        async with self._transaction() as tx:
            check = await self._get(tx.session, models.Check, check_id, "check")
            row = await self._get(tx.session, models.Session, check.session_id, "session")
            if check.kind == CheckKind.CLOSE.value and not by.is_clinician:
                raise NotAllowed("only a clinician waives the close-of-session check")
            if check.state in (CheckState.SATISFIED.value, CheckState.WAIVED.value):
                raise Conflict(f"the check is {check.state} already")
            check.waiver_reason = why
            check.waived_by = by.username
            check.waived_at = tx.now
            tx.audit(
                by.username,
                "waived",
                "check",
                check.id,
                session_id=row.id,
                from_state=check.state,
                to_state=CheckState.WAIVED.value,
                note=why,
            )
            await self._reevaluate(tx, await self._reloaded_state(tx, row), force_event=True)
            return _check_view(check, row.chair_id)

    async def close_session(
        self,
        session_id: int,
        *,
        by: Actor,
        reason: str | None = None,
        at: datetime | None = None,
    ) -> views.SessionView:
        """Close a session. Without the close-of-session check a clinician's reason is
        needed (`CloseCheckMissing` otherwise); it is kept as the check's waiver."""
        why = _text(reason, "reason")
        async with self._transaction() as tx:
            row = await self._get(tx.session, models.Session, session_id, "session")
            if row.closed_at is not None:
                raise Conflict("the session is closed already")
            closing = tx.now if at is None else require_utc(at, "at")
            if closing > tx.now or closing < row.started_at:
                raise InvalidInput("the close time must be after the start and not in the future")
            state = await self._reloaded_state(tx, row)
            if any(d.ended_at is None for d in state.facts.doses) and (
                state.schedule.doses_are_infusions
            ):
                raise Conflict("an infusion is still running: stop it first")
            checks = {c.key: c for c in state.schedule.checks(state.facts, closing)}
            close = checks.get("close")
            if close is not None and close.state not in (CheckState.SATISFIED, CheckState.WAIVED):
                if why is None or not by.is_clinician:
                    raise CloseCheckMissing(
                        "no close-of-session reading: take one, or a clinician closes the "
                        "session with a reason"
                    )
                close_row = state.check_rows.get("close")
                if close_row is not None:
                    close_row.waiver_reason = why
                    close_row.waived_by = by.username
                    close_row.waived_at = tx.now
                    tx.audit(
                        by.username,
                        "waived",
                        "check",
                        close_row.id,
                        session_id=row.id,
                        from_state=close_row.state,
                        to_state=CheckState.WAIVED.value,
                        note=why,
                    )
            row.closed_at = closing
            row.closed_by = by.username
            row.close_reason = why
            tx.audit(
                by.username,
                "closed",
                "session",
                row.id,
                session_id=row.id,
                from_state=row.phase,
                to_state=Phase.CLOSED.value,
                note=why,
            )
            # Conditions that exist only while a session is open clear with it.
            ending = {k.value for k in BASELINE_KINDS} | {AlertKind.STALE.value}
            open_rows = {
                a.condition: a
                for a in await self._open_alert_rows(tx.session, row.id)
                if a.kind in ending
            }
            await self._apply_alert_changes(
                tx,
                [
                    AlertChange(
                        _alert_of(a), *_alert_of(a).resolve(SYSTEM, tx.now, "session closed")
                    )
                    for a in open_rows.values()
                ],
                open_rows,
            )
            return await self._reevaluated_view(tx, row)

    # -- readings -------------------------------------------------------------------------

    async def record_manual_reading(
        self,
        session_id: int,
        *,
        systolic: float,
        diastolic: float,
        by: Actor,
        pulse_rate: float | None = None,
        measured_at: datetime | None = None,
        mean_arterial_pressure: float | None = None,
    ) -> views.ReadingView:
        """A reading a nurse took by hand (a cuff failed). `measured_at` may be in the past,
        not in the future."""
        async with self._transaction(cached=True) as tx:
            state = await self._state_for(tx, session_id)
            row = state.row
            if row.closed_at is not None:
                raise Conflict("the session is closed")
            measured = tx.now if measured_at is None else require_utc(measured_at, "measured_at")
            if measured > tx.now:
                raise InvalidInput("measured_at is in the future")
            if measured < row.started_at:
                raise InvalidInput("measured_at is before the session started")
            facts = ReadingFacts(
                id=None,
                measured_at=measured,
                systolic=float(systolic),
                diastolic=float(diastolic),
                pulse_rate=None if pulse_rate is None else float(pulse_rate),
                source=ReadingSource.MANUAL,
            )
            if pulse_rate is not None and not 0 < pulse_rate < 300:
                raise InvalidInput(f"pulse_rate must be within 0-300 /min, got {pulse_rate}")
            map_value = (
                float(mean_arterial_pressure)
                if mean_arterial_pressure is not None
                else mean_arterial_pressure_of(facts)
            )
            reading = await self._insert_reading(
                tx,
                state,
                facts,
                map_value=map_value,
                device_address=None,
                cuff_user_id=models.UNKNOWN_CUFF_USER,
                cuff_key=None,
                raw=None,
                recorded_by=by.username,
            )
            if reading is None:  # no device address: the unique keys never match
                raise Conflict("this reading was stored already")
            return _reading_view(reading)

    async def ingest_cuff_measurement(
        self,
        address: str,
        measurement: BloodPressureMeasurement,
        measured_at: datetime,
        raw: bytes,
        *,
        cuff_key: str | None = None,
    ) -> views.IngestResult:
        """Store a cuff's Blood Pressure Measurement and act on it; returns after commit
        ("acknowledged"). Tied to the session of the chair the cuff is assigned to (the
        session that was open when it was measured); a reading of an unknown or unassigned
        cuff is stored unattached, never dropped. An error frame is stored as a failed
        measurement.

        A record delivered again is stored once: the same `cuff_key` from the same cuff
        (opaque text the link derives from what the cuff itself sent: its raw timestamp,
        user id, values or BPS 1.1 record sequence number), whatever `measured_at` the
        clock correction gave it this time; or the same cuff + `measured_at` + user id.
        The second delivery returns the stored reading with `duplicate=True`, and
        neither raises an alert nor emits an event."""
        cuff = _text(address, "address", required=True)
        assert cuff is not None
        cuff = cuff.upper()
        key = _cuff_key(cuff_key)
        measured = require_utc(measured_at, "measured_at")
        systolic, diastolic, map_value = (_finite(v) for v in measurement.pressures_mmhg)
        valid = (
            not measurement.is_error_frame
            and systolic is not None
            and diastolic is not None
            and 0 < diastolic <= systolic < 400
        )
        user_id = (
            measurement.user_id if measurement.user_id is not None else (models.UNKNOWN_CUFF_USER)
        )
        facts = (
            ReadingFacts(
                id=None,
                measured_at=measured,
                systolic=systolic,
                diastolic=diastolic,
                mean_arterial_pressure=map_value,
                pulse_rate=_finite(measurement.pulse_rate),
                source=ReadingSource.CUFF,
                flags=frozenset(ReadingFlag(f) for f in _flags_of(measurement)),
            )
            if valid
            else None
        )
        record = _CuffRecord(cuff, measured, facts, map_value, user_id, key, bytes(raw))
        try:
            return await self._ingest_once(record)
        except DBAPIError as error:
            if not error.connection_invalidated:
                raise
            # Stored once whatever happened: the unique keys make a second try safe.
            log.warning("the database connection was lost: ingesting again on a new one")
            return await self._ingest_once(record)

    async def _ingest_once(self, record: _CuffRecord) -> views.IngestResult:
        if (
            self._writes_first(record.cuff, record.measured_at) and not self._others_writing()
        ):  # #16
            try:
                return await self._ingest(record, optimistic=True)
            except _MemoryOutdated:
                log.info("another process wrote meanwhile: ingesting again, reading first")
        return await self._ingest(record, optimistic=False)

    def _writes_first(self, cuff: str, measured: datetime) -> bool:
        """Whether the writer knows all it needs to ingest a reading of `cuff` without a
        read before its INSERT (see `_transaction`'s `optimistic`)."""
        known_device = self._devices.get(cuff)
        if self._known_seq is None or known_device is None or known_device.last_seen_at is None:
            return False
        if cuff not in self._chair_of_cuff and not self._remembers_clinic:
            return False
        chair_id = self._chair_of_cuff.get(cuff)
        if chair_id is None:
            return True
        sessions = self._chair_sessions.get(chair_id)
        if sessions is None or measured < sessions.open_started_at:
            return False
        session_id = sessions.session_at(measured)
        return session_id is None or session_id in self._states

    async def _ingest(self, record: _CuffRecord, *, optimistic: bool) -> views.IngestResult:
        cuff, measured = record.cuff, record.measured_at
        async with self._transaction(cached=True, optimistic=optimistic) as tx:
            session_id = await self._session_for_cuff(tx, cuff, measured)
            reading: models.Reading | None
            if record.facts is not None:
                state = None if session_id is None else await self._state_for(tx, session_id)
                reading = await self._insert_reading(
                    tx,
                    state,
                    record.facts,
                    map_value=record.map_value,
                    device_address=cuff,
                    cuff_user_id=record.user_id,
                    cuff_key=record.key,
                    raw=record.raw,
                    recorded_by=None,
                )
            else:
                reading = await self._insert_failure(
                    tx,
                    session_id,
                    cuff,
                    measured,
                    "error frame",
                    record.raw,
                    record.user_id,
                    record.key,
                )
            if reading is None:
                stored = await self._stored_reading(tx, cuff, measured, record.user_id, record.key)
                return views.IngestResult(
                    _reading_view(stored), duplicate=True, attached=stored.session_id is not None
                )
            await self._touch_device(tx, cuff)
            if session_id is None:
                log.warning(
                    "reading %s from cuff %s stored unattached: the cuff is not assigned to a "
                    "chair with a session covering %s",
                    reading.id,
                    cuff,
                    measured.isoformat(),
                )
            return views.IngestResult(
                _reading_view(reading), duplicate=False, attached=session_id is not None
            )

    async def record_measurement_failed(
        self,
        address: str,
        at: datetime,
        reason: str,
        *,
        raw: bytes | None = None,
        cuff_key: str | None = None,
    ) -> views.ReadingView:
        """A cuff reported a failed measurement (or the link saw one fail): stored as an
        invalid reading and announced as `measurement_failed`. With `cuff_key` (see
        `ingest_cuff_measurement`), or at the same `at`, a second report of the same
        failure returns the stored one and emits nothing."""
        cuff = (_text(address, "address", required=True) or "").upper()
        why = _text(reason, "reason", required=True)
        key = _cuff_key(cuff_key)
        measured = require_utc(at, "at")
        async with self._transaction(cached=True) as tx:
            session_id = await self._session_for_cuff(tx, cuff, measured)
            reading = await self._insert_failure(
                tx, session_id, cuff, measured, why or "failed", raw, None, key
            )
            if reading is None:
                stored = await self._stored_reading(
                    tx, cuff, measured, models.UNKNOWN_CUFF_USER, key
                )
                return _reading_view(stored)
            await self._touch_device(tx, cuff)
            return _reading_view(reading)

    def publish_cuff_pressure(self, address: str, pressure_mmhg: float, at: datetime) -> Event:
        """Live-only: the cuff pressure while it inflates (about once a second)."""
        return self.bus.publish_live(
            EventType.CUFF_PRESSURE,
            require_utc(at, "at"),
            {"device_address": address.upper(), "pressure_mmhg": pressure_mmhg},
        )

    async def _session_for_cuff(self, tx: _Tx, cuff: str, measured: datetime) -> int | None:
        """The id of the session a reading of `cuff` measured at `measured` belongs to:
        the latest-started session of the cuff's chair covering that time. Remembered
        per cuff and chair (every write that assigns a cuff or starts or closes a
        session drops that memory, see `_transaction`)."""
        if cuff in self._chair_of_cuff or self._remembers_clinic:
            chair_id = self._chair_of_cuff.get(cuff)
        else:
            chair_id = await tx.session.scalar(
                select(models.Chair.id).where(models.Chair.cuff_address == cuff)
            )
            self._chair_of_cuff[cuff] = chair_id
        if chair_id is None:
            return None
        known: _ChairSessions | None
        if chair_id in self._chair_sessions or self._remembers_clinic:
            known = self._chair_sessions.get(chair_id)
        else:
            known = await self._load_chair_sessions(tx.session, chair_id)
            self._chair_sessions[chair_id] = known
        if known is not None and measured >= known.open_started_at:
            return known.session_at(measured)
        # Before the open session (a late record), or no session open: ask the database.
        session = models.Session
        return await tx.session.scalar(
            select(session.id)
            .where(
                session.chair_id == chair_id,
                session.started_at <= measured,
                or_(session.closed_at.is_(None), session.closed_at >= measured),
            )
            .order_by(session.started_at.desc())
            .limit(1)
        )

    @staticmethod
    async def _load_chair_sessions(session: AsyncSession, chair_id: int) -> _ChairSessions | None:
        opened = (
            await session.execute(
                select(models.Session.started_at).where(
                    models.Session.chair_id == chair_id, models.Session.closed_at.is_(None)
                )
            )
        ).first()
        if opened is None:
            return None
        spans = await session.execute(
            select(models.Session.id, models.Session.started_at, models.Session.closed_at).where(
                models.Session.chair_id == chair_id, models.Session.started_at >= opened[0]
            )
        )
        return _ChairSessions(opened[0], tuple(_SessionSpan(*span) for span in spans))

    async def _cached_state(self, tx: _Tx, session_id: int | None) -> _SessionState | None:
        """The writer's state of the session if it keeps one (attached to `tx`)."""
        if session_id is None or session_id not in self._states:
            return None
        return await self._state_for(tx, session_id)

    async def _insert_once(self, tx: _Tx, reading: models.Reading) -> int | None:
        """INSERT the reading unless a unique key matches a stored one (then None): the
        duplicate check is the unique indexes themselves, in one statement."""
        values = {name: getattr(reading, name) for name in READING_COLUMNS}
        connection = await tx.connection()
        result = await connection.execute(self._insert_reading_once, values)
        if self._dialect == "postgresql":
            inserted = result.scalar()
            return None if inserted is None else int(inserted)
        return None if result.rowcount == 0 else int(result.lastrowid)

    async def _stored_reading(
        self, tx: _Tx, cuff: str, measured: datetime, user_id: int, key: str | None
    ) -> models.Reading:
        reading = models.Reading
        same = and_(
            reading.device_address == cuff,
            reading.measured_at == measured,
            reading.cuff_user_id == user_id,
        )
        if key is not None:
            same = or_(and_(reading.device_address == cuff, reading.cuff_key == key), same)
        stored = await tx.session.scalar(select(reading).where(same).order_by(reading.id).limit(1))
        if stored is None:
            raise Conflict(f"a reading of cuff {cuff} conflicts with a stored one")
        return stored

    async def _insert_reading(
        self,
        tx: _Tx,
        state: _SessionState | None,
        facts: ReadingFacts,
        *,
        map_value: float | None,
        device_address: str | None,
        cuff_user_id: int,
        cuff_key: str | None,
        raw: bytes | None,
        recorded_by: str | None,
    ) -> models.Reading | None:
        """Store a valid reading and act on it; None if it was stored before."""
        assert facts.systolic is not None and facts.diastolic is not None
        session_row = None if state is None else state.row
        reading = models.Reading(
            session_id=session_row.id if session_row else None,
            chair_id=session_row.chair_id if session_row else None,
            patient_id=session_row.patient_id if session_row else None,
            source=facts.source.value,
            device_address=device_address,
            cuff_user_id=cuff_user_id,
            cuff_key=cuff_key,
            measured_at=facts.measured_at,
            received_at=tx.now,
            systolic=facts.systolic,
            diastolic=facts.diastolic,
            mean_arterial_pressure=map_value,
            pulse_rate=facts.pulse_rate,
            flags=sorted(f.value for f in facts.flags),
            valid=True,
            category=blood_pressure_category(facts.systolic, facts.diastolic).value,
            failure_reason=None,
            raw=raw,
            recorded_by=recorded_by,
        )
        reading.id = await self._insert_once(tx, reading)  # type: ignore[assignment]
        if reading.id is None:
            return None
        tx.emit(EventType.READING, _reading_view(reading).as_dict())
        if state is not None:
            state.add_reading(reading)
            # Also for a closed session: a record the cuff delivers late may satisfy a
            # check (no new alert is raised for a closed session).
            await self._reevaluate(tx, state, trigger=reading)
        return reading

    async def _insert_failure(
        self,
        tx: _Tx,
        session_id: int | None,
        cuff: str,
        measured: datetime,
        reason: str,
        raw: bytes | None,
        user_id: int | None,
        cuff_key: str | None,
    ) -> models.Reading | None:
        """Store a failed measurement; None if it was stored before."""
        state = await self._cached_state(tx, session_id)
        if session_id is not None and state is None:
            row = await self._get(tx.session, models.Session, session_id, "session")
        else:
            row = None if state is None else state.row
        reading = models.Reading(
            session_id=row.id if row else None,
            chair_id=row.chair_id if row else None,
            patient_id=row.patient_id if row else None,
            source=ReadingSource.CUFF.value,
            device_address=cuff,
            cuff_user_id=models.UNKNOWN_CUFF_USER if user_id is None else user_id,
            cuff_key=cuff_key,
            measured_at=measured,
            received_at=tx.now,
            systolic=None,
            diastolic=None,
            mean_arterial_pressure=None,
            pulse_rate=None,
            flags=[],
            valid=False,
            category=None,
            failure_reason=reason,
            raw=raw,
            recorded_by=None,
        )
        reading.id = await self._insert_once(tx, reading)  # type: ignore[assignment]
        if reading.id is None:
            return None
        tx.emit(EventType.MEASUREMENT_FAILED, _reading_view(reading).as_dict())
        if state is not None:
            state.add_reading(reading)
        return reading

    async def list_readings(
        self,
        *,
        session_id: int | None = None,
        device_address: str | None = None,
        unattached: bool = False,
        since: datetime | None = None,
        limit: int = 1000,
    ) -> list[views.ReadingView]:
        async with self._sessions() as session:
            query = select(models.Reading).order_by(models.Reading.measured_at, models.Reading.id)
            if session_id is not None:
                await self._get(session, models.Session, session_id, "session")
                query = query.where(models.Reading.session_id == session_id)
            if device_address is not None:
                query = query.where(models.Reading.device_address == device_address.upper())
            if unattached:
                query = query.where(models.Reading.session_id.is_(None))
            if since is not None:
                query = query.where(models.Reading.measured_at >= require_utc(since, "since"))
            rows = await session.scalars(query.limit(limit))
            return [_reading_view(r) for r in rows]

    async def get_reading(self, reading_id: int) -> views.ReadingView:
        async with self._sessions() as session:
            return _reading_view(await self._get(session, models.Reading, reading_id, "reading"))

    # -- devices --------------------------------------------------------------------------

    async def _ensure_device(self, tx: _Tx, address: str) -> models.Device:
        device = await tx.session.scalar(
            select(models.Device).where(models.Device.address == address)
        )
        if device is None:
            device = models.Device(
                address=address, connection_state="unknown", first_seen_at=tx.now
            )
            tx.session.add(device)
            await tx.session.flush()
        return device

    async def _touch_device(self, tx: _Tx, address: str) -> None:
        """A cuff delivered a record: its device row exists (a cuff first seen by its
        reading gets one, seen now). Its `last_seen_at` is the link's to keep afterwards
        (`update_device`, which the daemon calls with every measurement): no write per
        reading."""
        known = self._devices.get(address)
        if known is None or known.last_seen_at is None:
            device = await self._ensure_device(tx, address)
            if device.last_seen_at is None or device.last_seen_at < tx.now:
                device.last_seen_at = tx.now
            self._devices[address] = _KnownDevice(device.id, device.last_seen_at)

    async def update_device(
        self,
        address: str,
        *,
        at: datetime | None = None,
        name: str | None = None,
        manufacturer: str | None = None,
        model: str | None = None,
        serial: str | None = None,
        firmware: str | None = None,
        battery_percent: int | None = None,
        rssi: int | None = None,
        connection_state: str | None = None,
    ) -> views.DeviceView:
        """A cuff was seen or changed (advertisement, connection, battery, device
        information). Only given fields change; a change is a `device_status` event."""
        cuff = (_text(address, "address", required=True) or "").upper()
        if connection_state is not None and connection_state not in CONNECTION_STATES:
            raise InvalidInput(
                f"connection_state must be one of {', '.join(sorted(CONNECTION_STATES))}"
            )
        if battery_percent is not None and not 0 <= battery_percent <= 100:
            raise InvalidInput(f"battery_percent is 0-100, got {battery_percent}")
        status = {
            "name": name,
            "manufacturer": manufacturer,
            "model": model,
            "serial": serial,
            "firmware": firmware,
            "battery_percent": battery_percent,
            "connection_state": connection_state,
        }
        seen_at = self.now() if at is None else require_utc(at, "at")
        # Advertisements arrive often: with no status change, write at most every
        # DEVICE_SEEN_WRITE_INTERVAL (no write transaction, no event in between). The
        # look is on the writer's connection, between its transactions: the cuff path
        # never waits for a connection the readers (API, snapshots) hold.
        async with self._lock, self._writes() as session:
            known = await session.scalar(select(models.Device).where(models.Device.address == cuff))
            if (
                known is not None
                and all(v is None or getattr(known, k) == v for k, v in status.items())
                and known.last_seen_at is not None
                and timedelta(0) <= seen_at - known.last_seen_at < DEVICE_SEEN_WRITE_INTERVAL
            ):
                chair_id = await session.scalar(
                    select(models.Chair.id).where(models.Chair.cuff_address == cuff)
                )
                return _device_view(known, chair_id)
        async with self._transaction(cached=True) as tx:  # devices only: the caches hold
            seen = seen_at
            device = await self._ensure_device(tx, cuff)
            changed = known is None  # a cuff seen for the first time
            for attribute, value in status.items():
                if value is not None and getattr(device, attribute) != value:
                    setattr(device, attribute, value)
                    changed = True
            if rssi is not None:
                device.rssi = rssi  # signal strength is shown, but is no status change
            if device.last_seen_at is None or seen > device.last_seen_at:
                device.last_seen_at = seen
            chair_id = await tx.session.scalar(
                select(models.Chair.id).where(models.Chair.cuff_address == cuff)
            )
            self._devices[cuff] = _KnownDevice(device.id, device.last_seen_at)
            view = _device_view(device, chair_id)
            if changed:
                tx.emit(EventType.DEVICE_STATUS, view.as_dict())
            return view

    async def device_seen(
        self,
        address: str,
        *,
        at: datetime | None = None,
        name: str | None = None,
        rssi: int | None = None,
    ) -> views.DeviceView:
        return await self.update_device(address, at=at, name=name, rssi=rssi)

    async def list_devices(self) -> list[views.DeviceView]:
        async with self._sessions() as session:
            chairs = {
                c.cuff_address: c.id
                for c in await session.scalars(select(models.Chair))
                if c.cuff_address
            }
            rows = await session.scalars(select(models.Device).order_by(models.Device.id))
            return [_device_view(d, chairs.get(d.address)) for d in rows]

    # -- alerts ---------------------------------------------------------------------------

    async def _open_alert_rows(self, session: AsyncSession, session_id: int) -> list[models.Alert]:
        return list(
            await session.scalars(
                select(models.Alert)
                .where(
                    models.Alert.session_id == session_id,
                    models.Alert.state != AlertState.RESOLVED.value,
                )
                .order_by(models.Alert.id)
            )
        )

    async def _apply_alert_changes(
        self,
        tx: _Tx,
        changes: Iterable[AlertChange],
        rows_by_condition: dict[str, models.Alert],
    ) -> None:
        """Persist decisions of the alert state machine, with their audit and events."""
        for change in changes:
            row = rows_by_condition.get(change.after.condition) if change.before else None
            if row is None:
                row = models.Alert()
                tx.session.add(row)
            _write_alert(row, change.after)
            await tx.session.flush()
            self._audit_alert(tx, row, change.audit)
            tx.emit(
                EventType.ALERT if change.before is None else EventType.ALERT_UPDATED,
                _alert_view(row).as_dict(),
            )
            if row.state == AlertState.RESOLVED.value:
                rows_by_condition.pop(row.condition, None)
            else:
                rows_by_condition[row.condition] = row

    def _audit_alert(self, tx: _Tx, row: models.Alert, audit: AuditEntry) -> None:
        tx.audit(
            audit.by,
            audit.action,
            "alert",
            row.id,
            session_id=row.session_id,
            from_state=audit.from_state.value if audit.from_state else None,
            to_state=audit.to_state.value,
            note=audit.note,
            at=audit.at,
        )

    async def _alert_transition(
        self, alert_id: int, step: Callable[[Alert, datetime], tuple[Alert, AuditEntry]]
    ) -> views.AlertView:
        # The writer keeps the open alerts of the sessions it remembers: the one changed
        # here is that same row (attached first), so the memory follows the change.
        async with self._transaction(cached=True) as tx:
            owner = next(
                (
                    session_id
                    for session_id, state in self._states.items()
                    if any(a.id == alert_id for a in state.alert_rows.values())
                ),
                None,
            )
            if owner is not None:
                await self._state_for(tx, owner)
            row = await self._get(tx.session, models.Alert, alert_id, "alert")
            before = _alert_of(row)
            after, audit = step(before, tx.now)
            _write_alert(row, after)
            await tx.session.flush()
            self._audit_alert(tx, row, audit)
            tx.emit(EventType.ALERT_UPDATED, _alert_view(row).as_dict())
            return _alert_view(row)

    async def acknowledge_alert(self, alert_id: int, *, by: Actor) -> views.AlertView:
        """Acknowledge. A dosing hold is the clinician's to acknowledge (DESIGN.md
        "Thresholds"): that is what lets the dose be recorded."""
        async with self._sessions() as session:
            row = await self._get(session, models.Alert, alert_id, "alert")
            if row.kind == AlertKind.DOSING_HOLD.value and not by.is_clinician:
                raise NotAllowed("a dosing hold is acknowledged by a clinician")
        return await self._alert_transition(
            alert_id, lambda alert, now: alert.acknowledge(by.username, now)
        )

    async def snooze_alert(self, alert_id: int, minutes: float, *, by: Actor) -> views.AlertView:
        return await self._alert_transition(
            alert_id, lambda alert, now: alert.snooze(by.username, now, minutes, self.max_snooze)
        )

    async def resolve_alert(self, alert_id: int, note: str, *, by: Actor) -> views.AlertView:
        return await self._alert_transition(
            alert_id, lambda alert, now: alert.resolve(by.username, now, note)
        )

    async def get_alert(self, alert_id: int) -> views.AlertView:
        async with self._sessions() as session:
            return _alert_view(await self._get(session, models.Alert, alert_id, "alert"))

    async def list_alerts(
        self,
        *,
        session_id: int | None = None,
        state: AlertState | str | Sequence[AlertState | str] | None = None,
        kind: AlertKind | str | None = None,
        open_only: bool = False,
        limit: int = 500,
    ) -> list[views.AlertView]:
        async with self._sessions() as session:
            query = select(models.Alert).order_by(models.Alert.id.desc()).limit(limit)
            if session_id is not None:
                query = query.where(models.Alert.session_id == session_id)
            if state is not None:
                states = [state] if isinstance(state, str) else list(state)
                try:
                    values = [AlertState(s).value for s in states]
                except ValueError as error:
                    raise InvalidInput(str(error)) from None
                query = query.where(models.Alert.state.in_(values))
            if open_only:
                query = query.where(models.Alert.state != AlertState.RESOLVED.value)
            if kind is not None:
                try:
                    query = query.where(models.Alert.kind == AlertKind(kind).value)
                except ValueError as error:
                    raise InvalidInput(str(error)) from None
            return [_alert_view(r) for r in await session.scalars(query)]

    async def list_audit(
        self,
        *,
        entity: str | None = None,
        entity_id: int | None = None,
        session_id: int | None = None,
        limit: int = 1000,
    ) -> list[views.AuditView]:
        async with self._sessions() as session:
            query = select(models.AuditRecord).order_by(models.AuditRecord.id).limit(limit)
            if entity is not None:
                query = query.where(models.AuditRecord.entity == entity)
            if entity_id is not None:
                query = query.where(models.AuditRecord.entity_id == entity_id)
            if session_id is not None:
                query = query.where(models.AuditRecord.session_id == session_id)
            return [_audit_view(r) for r in await session.scalars(query)]

    # -- checks ---------------------------------------------------------------------------

    async def list_checks(
        self, session_id: int, *, include_dropped: bool = False
    ) -> list[views.CheckView]:
        async with self._sessions() as session:
            row = await self._get(session, models.Session, session_id, "session")
            query = select(models.Check).where(models.Check.session_id == session_id)
            if not include_dropped:
                query = query.where(models.Check.required.is_(True))
            checks = await session.scalars(
                query.order_by(models.Check.window_start.is_(None), models.Check.window_start)
            )
            return [_check_view(c, row.chair_id) for c in checks]

    # -- the rules, applied ----------------------------------------------------------------

    async def _reevaluate(
        self,
        tx: _Tx,
        state: _SessionState,
        *,
        trigger: models.Reading | None = None,
        force_event: bool = False,
    ) -> views.SessionView | None:
        """Bring a session's checks, alerts and phase up to date with its facts and the
        time; emit what changed. `state` is the writer's (`_state_for`), kept up to date
        here. Returns the session as `session_updated` showed it (None: unchanged, no
        event); the changed rows are written at the latest at commit."""
        row = state.row
        now = tx.now
        schedule, facts = state.schedule, state.facts
        session_changed = force_event
        for condition in [
            c for c, a in state.alert_rows.items() if a.state == AlertState.RESOLVED.value
        ]:
            del state.alert_rows[condition]
        alert_rows = state.alert_rows

        def open_alerts() -> list[Alert]:
            return [_alert_of(a) for a in alert_rows.values()]

        context: dict[str, Any] = {"session_id": row.id, "chair_id": row.chair_id}

        # 1. Checks: store each with its state; announce due and overdue.
        computed = schedule.checks(facts, now)
        overdue_now: list[tuple[Check, models.Check]] = []
        settled: list[str] = []
        changed_checks: list[tuple[Check, models.Check]] = []
        for check in computed:
            check_row = state.check_rows.get(check.key)
            previous = None if check_row is None else check_row.state
            if check_row is None:
                check_row = models.Check(
                    session_id=row.id,
                    key=check.key,
                    waiver_reason=None,
                    waived_by=None,
                    waived_at=None,
                )
                tx.session.add(check_row)
                state.check_rows[check.key] = check_row
            computed_values = {
                "kind": check.kind.value,
                "label": check.label,
                "window_start": check.window_start,
                "window_end": check.window_end,
                "state": check.state.value,
                "satisfied_by": check.satisfied_by,
                "required": True,
            }
            if check_row.waived_by is None:
                computed_values["waiver_reason"] = check.waiver_reason
            for name, value in computed_values.items():
                # Only what changed: no work for the flush when nothing did.
                if previous is None or getattr(check_row, name) != value:
                    setattr(check_row, name, value)
            if previous != check.state.value:
                changed_checks.append((check, check_row))
            if check.state in (CheckState.SATISFIED, CheckState.WAIVED):
                settled.append(f"{AlertKind.CHECK_OVERDUE.value}:{check.key}")
        if changed_checks:
            await tx.session.flush()  # new checks get their ids
            session_changed = True
        for check, check_row in changed_checks:
            shown = _check_view(check_row, row.chair_id).as_dict()
            if check.state is CheckState.DUE:
                tx.emit(EventType.CHECK_DUE, shown)
            elif check.state is CheckState.OVERDUE:
                tx.emit(EventType.CHECK_OVERDUE, shown)
                overdue_now.append((check, check_row))
        keys = {c.key for c in computed}
        for key, check_row in state.check_rows.items():
            if key not in keys and check_row.required:
                check_row.required = False
                if check_row.state in (CheckState.PENDING.value, CheckState.DUE.value):
                    check_row.state = CheckState.WAIVED.value
                    check_row.waiver_reason = NO_LONGER_REQUIRED
                session_changed = True
                settled.append(f"{AlertKind.CHECK_OVERDUE.value}:{key}")

        # 2. What a new reading shows.
        if trigger is not None and trigger.valid and row.closed_at is None:
            reading = _reading_facts(trigger)
            first_dose = facts.first_dose_at
            post_dose = first_dose is not None and reading.measured_at > first_dose
            baseline = schedule.baseline(facts)
            assessment = schedule.thresholds.assess(reading, baseline, post_dose)
            latest = all(r.measured_at <= reading.measured_at for r in facts.readings if r.valid)
            clears = {k.value for k in assessment.clears} if latest else set()
            await self._apply_alert_changes(
                tx,
                reconcile(
                    open_alerts(),
                    assessment.findings,
                    clears,
                    now,
                    reading_id=trigger.id,
                    **context,
                ),
                alert_rows,
            )
            if not post_dose:
                age = schedule.age_at_start(facts)
                found = schedule.thresholds.baseline_findings(
                    baseline, age, state.protocol.baseline.consider_deferring_when_elevated
                )
                gone = {k.value for k in BASELINE_KINDS} - {f.kind.value for f in found}
                await self._apply_alert_changes(
                    tx,
                    reconcile(open_alerts(), found, gone, now, reading_id=trigger.id, **context),
                    alert_rows,
                )
            # A reading taken after an overdue check's window settles its alert.
            for check in computed:
                if (
                    check.state is CheckState.OVERDUE
                    and check.window_end is not None
                    and reading.measured_at >= check.window_end
                ):
                    settled.append(f"{AlertKind.CHECK_OVERDUE.value}:{check.key}")

        # 3. Checks that went overdue raise an alert each; settled ones clear.
        for check, check_row in overdue_now:
            if row.closed_at is not None:
                continue
            finding = Finding(
                AlertKind.CHECK_OVERDUE,
                Priority.MEDIUM,
                f"{check.label}: overdue (no reading in its window)",
                subject=check.key,
            )
            await self._apply_alert_changes(
                tx,
                reconcile(open_alerts(), [finding], [], now, check_id=check_row.id, **context),
                alert_rows,
            )
        if settled:
            await self._apply_alert_changes(
                tx,
                reconcile(open_alerts(), [], settled, now, clear_note="check settled", **context),
                alert_rows,
            )

        # 4. Staleness: an open session with no reading for `stale_after`.
        if row.closed_at is None:
            last = max((r.measured_at for r in facts.readings if r.valid), default=row.started_at)
            deadline = max(last, row.started_at) + self.stale_after
            if now >= deadline:
                raised_since = await tx.session.scalar(
                    select(models.Alert.id).where(
                        models.Alert.session_id == row.id,
                        models.Alert.kind == AlertKind.STALE.value,
                        models.Alert.raised_at >= deadline,
                    )
                )
                if raised_since is None:
                    minutes = self.stale_after.total_seconds() / 60
                    finding = Finding(
                        AlertKind.STALE,
                        Priority.LOW,
                        f"No reading for {minutes:g} min: check the cuff",
                    )
                    await self._apply_alert_changes(
                        tx, reconcile(open_alerts(), [finding], [], now, **context), alert_rows
                    )
            elif AlertKind.STALE.value in alert_rows:
                await self._apply_alert_changes(
                    tx,
                    reconcile(
                        open_alerts(),
                        [],
                        [AlertKind.STALE.value],
                        now,
                        clear_note="a reading arrived",
                        **context,
                    ),
                    alert_rows,
                )

        # 5. Phase.
        phase = schedule.phase(facts, now).value
        if phase != row.phase:
            tx.audit(
                SYSTEM,
                "phase",
                "session",
                row.id,
                session_id=row.id,
                from_state=row.phase,
                to_state=phase,
            )
            row.phase = phase
            session_changed = True
        if not session_changed:
            return None
        view = self._session_view(state, now)
        tx.emit(EventType.SESSION_UPDATED, view.as_dict())
        return view

    def _stale_deadline(self, state: _SessionState) -> datetime | None:
        if state.row.closed_at is not None:
            return None
        last = max(
            (r.measured_at for r in state.facts.readings if r.valid), default=state.row.started_at
        )
        return max(last, state.row.started_at) + self.stale_after

    # -- time -------------------------------------------------------------------------------

    async def apply_time(self) -> None:
        """Apply what time has made due: checks due or overdue, phases, staleness, snooze
        ends and escalations. The timer loop calls it at each deadline."""
        async with self._transaction(wake=False, cached=True) as tx:
            # The kept states of closed sessions go: their alerts are loaded below as
            # rows of their own (only kept states are attached first).
            for session_id in [i for i, s in self._states.items() if s.row.closed_at]:
                del self._states[session_id]
            open_ids = list(
                await tx.session.scalars(
                    select(models.Session.id).where(models.Session.closed_at.is_(None))
                )
            )
            for session_id in open_ids:
                await self._reevaluate(tx, await self._state_for(tx, session_id))
            open_rows = list(
                await tx.session.scalars(
                    select(models.Alert).where(models.Alert.state != AlertState.RESOLVED.value)
                )
            )
            for alert_row in open_rows:
                for after, audit in _alert_of(alert_row).due_transitions(
                    tx.now, self.escalation_delay
                ):
                    _write_alert(alert_row, after)
                    await tx.session.flush()
                    self._audit_alert(tx, alert_row, audit)
                    data = _alert_view(alert_row).as_dict()
                    if audit.action == "escalated":
                        data["renotify"] = True
                    tx.emit(EventType.ALERT_UPDATED, data)

    async def next_deadline(self) -> datetime | None:
        """The next moment time alone changes something: a window edge, a phase change,
        a stale deadline, a snooze end or an escalation."""
        now = self.now()
        deadlines: list[datetime] = []
        async with self._sessions() as session:
            open_rows = list(
                await session.scalars(
                    select(models.Session).where(models.Session.closed_at.is_(None))
                )
            )
            for state in await self._load_states(session, open_rows):
                edge = state.schedule.next_change(state.facts, now)
                if edge is not None:
                    deadlines.append(edge)
                stale = self._stale_deadline(state)
                if stale is not None and stale > now:
                    deadlines.append(stale)
            for alert_row in await session.scalars(
                select(models.Alert).where(models.Alert.state != AlertState.RESOLVED.value)
            ):
                due = _alert_of(alert_row).next_deadline(self.escalation_delay)
                if due is not None:
                    deadlines.append(due)
        return min(deadlines, default=None)

    def wake(self) -> None:
        """Make the timer loop recompute its deadline now."""
        self._wake.set()

    async def run_timers(self) -> None:
        """Sleep until the next deadline (or a change), apply what is due, repeat. Not a
        once-a-second poll: with nothing scheduled it sleeps until something changes."""
        while True:
            self._wake.clear()
            try:
                await self.apply_time()
                deadline = await self.next_deadline()
            except Exception:
                log.exception("timer loop: applying due transitions failed; retrying in 5 s")
                deadline = self.now() + timedelta(seconds=5)
            timeout = (
                None
                if deadline is None
                else max(0.0, (deadline - self.now() + TIMER_SLACK).total_seconds())
            )
            # #16: asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation (a timer leader stepping down) that arrives as the wake does.
            try:  # #16
                async with asyncio.timeout(timeout):  # #16
                    await self._wake.wait()  # #16
            except TimeoutError:
                pass

    # -- snapshot ---------------------------------------------------------------------------

    async def snapshot(self) -> views.Snapshot:
        """Chairs, open sessions, latest readings, open alerts, due and overdue checks: what
        a new WebSocket client shows first, consistent with the events up to `seq`."""
        async with self._sessions() as session:
            if not is_sqlite(self.engine):
                # One consistent view across the queries (SQLite's read transaction is).
                await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            seq = await session.scalar(
                select(models.EventCounter.last_seq).where(models.EventCounter.id == 1)
            )
            chairs = list(await session.scalars(select(models.Chair).order_by(models.Chair.id)))
            open_rows = list(
                await session.scalars(
                    select(models.Session).where(models.Session.closed_at.is_(None))
                )
            )
            now = self.now()
            by_chair = {s.chair_id: s.id for s in open_rows}
            # A fixed number of queries, however many chairs (no query per session).
            states = await self._load_states(session, open_rows)
            sessions = [self._session_view(state, now) for state in states]
            latest_ids = [
                max(valid, key=lambda r: (r.measured_at, r.id or 0)).id
                for state in states
                if (valid := [r for r in state.facts.readings if r.valid])
            ]
            latest = [
                _reading_view(r)
                for r in await session.scalars(
                    select(models.Reading)
                    .where(models.Reading.id.in_(latest_ids or [-1]))
                    .order_by(models.Reading.session_id)
                )
            ]
            alerts = [
                _alert_view(a)
                for a in await session.scalars(
                    select(models.Alert)
                    .where(models.Alert.state != AlertState.RESOLVED.value)
                    .order_by(models.Alert.id)
                )
            ]
            chair_of = {s.id: s.chair_id for s in open_rows}
            due = [
                _check_view(c, chair_of.get(c.session_id))
                for c in await session.scalars(
                    select(models.Check)
                    .where(
                        models.Check.session_id.in_(list(chair_of) or [-1]),
                        models.Check.required.is_(True),
                        models.Check.state.in_([CheckState.DUE.value, CheckState.OVERDUE.value]),
                    )
                    .order_by(models.Check.window_start)
                )
            ]
            cuffs = {c.cuff_address: c.id for c in chairs if c.cuff_address}
            devices = [
                _device_view(d, cuffs.get(d.address))
                for d in await session.scalars(select(models.Device).order_by(models.Device.id))
            ]
            return views.Snapshot(
                seq=int(seq or 0),
                chairs=tuple(
                    views.ChairView(c.id, c.name, c.cuff_address, by_chair.get(c.id))
                    for c in chairs
                ),
                sessions=tuple(sessions),
                latest_readings=tuple(latest),
                active_alerts=tuple(alerts),
                due_checks=tuple(due),
                devices=tuple(devices),
            )

    # --- multi-node (#16) ---

    # Another daemon's events that change one session's state.
    SESSION_SCOPED_EVENTS = frozenset(
        t.value
        for t in (
            EventType.READING,
            EventType.MEASUREMENT_FAILED,
            EventType.ALERT,
            EventType.ALERT_UPDATED,
            EventType.CHECK_DUE,
            EventType.CHECK_OVERDUE,
        )
    )
    # More events than this since the writer's last write: forget everything instead.
    FORGET_CHANGED_LIMIT = 1000
    # How long after another process's write ingest stops writing first (seconds).
    OTHERS_WRITING_S = 2.0

    async def _forget_changed(self, session: AsyncSession, after: int, upto: int) -> None:
        """Other daemons committed events `after`..`upto` since this writer's last write:
        forget only what they touched (their sessions, chairs, cuffs), read from their
        events in one query, instead of the whole memory; anything it cannot place, or
        too much at once, and it forgets everything. What is forgotten is loaded again
        when needed, one session or chair at a time (never the whole clinic under the
        group-wide counter lock)."""
        self._others_write = True
        self._others_wrote_at = time.monotonic()
        if upto - after > self.FORGET_CHANGED_LIMIT:
            self._forget_all()
            return
        rows = await session.execute(
            select(EVENTS.c.type, EVENTS.c.data).where(EVENTS.c.seq > after, EVENTS.c.seq <= upto)
        )
        for kind, data in rows:
            if not self._forget_touched(kind, data or {}):
                self._forget_all()
                return
        # What is not remembered now may exist: look it up (`_session_for_cuff`).
        self._remembers_clinic = False

    def _others_writing(self) -> bool:
        """Another process wrote between two of our writes lately: an optimistic ingest
        would most likely fail and be done again (dropping its session's memory), so
        take the counter lock first instead."""
        return time.monotonic() - self._others_wrote_at < self.OTHERS_WRITING_S

    def _forget_touched(self, kind: str, data: Mapping[str, Any]) -> bool:
        """Forget what one event of another daemon says changed; False: unknown."""
        if kind in self.SESSION_SCOPED_EVENTS:
            self._states.pop(data.get("session_id") or 0, None)
            return True
        if kind == EventType.SESSION_UPDATED.value:
            self._states.pop(data.get("id") or 0, None)
            self._chair_sessions.pop(data.get("chair_id") or 0, None)
            return True
        if kind == EventType.DEVICE_STATUS.value:
            address = str(data.get("address") or "").upper()
            self._chair_of_cuff.pop(address, None)
            self._devices.pop(address, None)
            chair_id = data.get("chair_id")
            for cuff, held_by in list(self._chair_of_cuff.items()):
                if chair_id is not None and held_by == chair_id:
                    del self._chair_of_cuff[cuff]  # the chair has another cuff now
            return True
        return False


def mean_arterial_pressure_of(reading: ReadingFacts) -> float | None:
    if reading.systolic is None or reading.diastolic is None:
        return None
    return round(mean_arterial_pressure(reading.systolic, reading.diastolic), 1)

"""Ingest: readings into their sessions (a cuff's records, manual readings, failed
measurements) and the live cuff pressure; the hot path, three statements per warm cuff
reading (issue #9), through the writer's memory."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import Insert

from vitalsd import views
from vitalsd.alerts import reconcile
from vitalsd.auth import Actor
from vitalsd.cuff_time import file_live_reading, file_stored_record
from vitalsd.domain import (
    AlertKind,
    AlertState,
    AuditAction,
    CuffReading,
    Priority,
    ReadingFlag,
    ReadingSource,
    require_utc,
)
from vitalsd.domain import Reading as ReadingFacts
from vitalsd.errors import Conflict, InvalidInput
from vitalsd.store import models
from vitalsd.store.events import Event, EventType
from vitalsd.thresholds import Finding, blood_pressure_category
from vitalsd.timebounds import SessionSpan, within_session

from .lookups import ensure_device, get
from .rows import alert_of, finite, mean_arterial_pressure_of, reading_view, text
from .rows import cuff_key as checked_cuff_key
from .rules import apply_alert_changes, reevaluate
from .session_state import SessionState
from .unit_of_work import CachedTx, MemoryOutdated, UnitOfWork

log = logging.getLogger(__name__)

READINGS = cast(Table, models.Reading.__table__)
READING_COLUMNS = tuple(c.key for c in READINGS.columns if c.key != "id")


@dataclass(frozen=True)
class CuffRecord:
    """A cuff's record as ingest stores it; `facts` None: an error frame."""

    cuff: str
    measured_at: datetime
    facts: ReadingFacts | None
    map_value: float | None
    user_id: int
    key: str | None
    raw: bytes
    # DESIGN.md "Time": its time cannot be trusted (it joins only the chair's open
    # session); `clock_off`: a live reading whose cuff clock was off (the cuff's alert).
    untrusted: bool = False
    clock_off: bool = False
    cuff_stamp: datetime | None = None
    live: bool = False


class Ingest:
    """Stores readings and acts on them, in cached transactions."""

    def __init__(
        self,
        uow: UnitOfWork,
        stale_after: timedelta,
        clock_tolerance: timedelta = timedelta(minutes=2),
    ) -> None:
        self._uow = uow
        self._stale_after = stale_after
        self._clock_tolerance = clock_tolerance
        # Cuffs whose `cuff_clock_off` alert is open, as far as this process knows: a
        # live reading back within the tolerance clears it. Each cuff's first live
        # reading in a process looks in the database (an alert raised before a restart,
        # or by another node); later ones cost no statement unless the set says so.
        self._clock_off_cuffs: set[str] = set()
        self._clock_looked_up: set[str] = set()
        # The duplicate check is the unique indexes themselves: one statement. SQLite
        # gives the new id and the row count without RETURNING (one thread hop fewer).
        self._insert_reading_once: Insert = (
            postgresql.insert(READINGS).on_conflict_do_nothing().returning(READINGS.c.id)
            if uow.dialect == "postgresql"
            else sqlite.insert(READINGS).on_conflict_do_nothing()
        )

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
        async with self._uow.cached_transaction() as tx:
            state = await tx.state_for(session_id)
            row = state.row
            if row.closed_at is not None:
                raise Conflict("the session is closed")
            measured = within_session(
                measured_at, "measured_at", SessionSpan(row.started_at), tx.now
            )
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
            tx.audit(
                by.username,
                AuditAction.MANUAL_READING,
                "reading",
                reading.id,
                session_id=row.id,
                note=f"{facts.systolic:g}/{facts.diastolic:g} at {measured.isoformat()}",
            )
            return reading_view(reading)

    async def ingest_cuff_measurement(
        self,
        address: str,
        measurement: CuffReading,
        measured_at: datetime,
        raw: bytes,
        *,
        cuff_key: str | None = None,
    ) -> views.IngestResult:
        """Store a cuff's record (its Blood Pressure Measurement, converted by the
        Bluetooth side: `vitalsd.cuff_readings`) and act on it; returns after commit
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
        cuff = text(address, "address", required=True)
        assert cuff is not None
        cuff = cuff.upper()
        key = checked_cuff_key(cuff_key)
        stamp = require_utc(measured_at, "measured_at")
        filed = self._filed_time(measurement, stamp)
        measured = filed.at
        systolic, diastolic, map_value = (
            finite(v)
            for v in (
                measurement.systolic,
                measurement.diastolic,
                measurement.mean_arterial_pressure,
            )
        )
        valid = (
            not measurement.error_frame
            and systolic is not None
            and diastolic is not None
            and 0 < diastolic <= systolic < 400
        )
        # DESIGN.md "Partial frames" (finding 13): one pressure without the other is kept
        # as an incomplete reading (with its pulse), never as an error frame.
        partial = (
            not measurement.error_frame
            and (systolic is None) != (diastolic is None)
            and all(v is None or 0 < v < 400 for v in (systolic, diastolic))
        )
        flags = frozenset(measurement.flags) | (
            {ReadingFlag.CUFF_CLOCK_OFF} if filed.clock_off else frozenset()
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
                pulse_rate=finite(measurement.pulse_rate),
                source=ReadingSource.CUFF,
                flags=flags if valid else flags | {ReadingFlag.INCOMPLETE},
                valid=valid,
                received_at=filed.received_at,
            )
            if valid or partial
            else None
        )
        record = CuffRecord(
            cuff,
            measured,
            facts,
            map_value,
            user_id,
            key,
            bytes(raw),
            untrusted=filed.untrusted,
            clock_off=filed.clock_off and measurement.live,
            cuff_stamp=stamp,
            live=measurement.live and measurement.received_at is not None,
        )
        try:
            return await self._ingest_once(record)
        except DBAPIError as error:
            if not error.connection_invalidated:
                raise
            # Stored once whatever happened: the unique keys make a second try safe.
            log.warning("the database connection was lost: ingesting again on a new one")
            return await self._ingest_once(record)

    def _filed_time(self, measurement: CuffReading, stamp: datetime) -> _Filed:
        """DESIGN.md "Time": a live reading whose stamp is off the receive time by more
        than the tolerance is filed at the receive time; a stored record (already
        shifted by the link by the offset it measured at connection) never later than
        its arrival; one whose clock was never checked cannot be trusted."""
        if measurement.received_at is None:
            return _Filed(stamp, None, clock_off=False, untrusted=False)
        received = require_utc(measurement.received_at, "received_at")
        if measurement.live:
            live = file_live_reading(stamp, received, self._clock_tolerance)
            return _Filed(live.at, received, live.clock_off, untrusted=live.clock_off)
        stored = file_stored_record(stamp, None, received)
        from_the_future = stamp - received > self._clock_tolerance
        untrusted = from_the_future or not measurement.clock_checked
        return _Filed(stored.at, received, from_the_future, untrusted)

    async def _ingest_once(self, record: CuffRecord) -> views.IngestResult:
        if self._uow.writes_first(record.cuff, record.measured_at):
            try:
                return await self._ingest(record, optimistic=True)
            except MemoryOutdated:
                log.info("another process wrote meanwhile: ingesting again, reading first")
        return await self._ingest(record, optimistic=False)

    async def _ingest(self, record: CuffRecord, *, optimistic: bool) -> views.IngestResult:
        cuff, measured = record.cuff, record.measured_at
        async with self._uow.cached_transaction(optimistic=optimistic) as tx:
            session_id = await tx.session_for_cuff(cuff, measured)
            if (
                record.untrusted
                and session_id is not None
                and session_id != await tx.open_session_for_cuff(cuff)
            ):
                # Never another session than the chair's open one (finding 4: a slow
                # clock filed a live reading into the previous patient's session).
                session_id = None
            reading: models.Reading | None
            if record.facts is not None:
                state = None if session_id is None else await tx.state_for(session_id)
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
                    reading_view(stored), duplicate=True, attached=stored.session_id is not None
                )
            await self._touch_device(tx, cuff)
            await self._watch_cuff_clock(tx, record, reading)
            if session_id is None:
                log.warning(
                    "reading %s from cuff %s stored unattached: the cuff is not assigned to a "
                    "chair with a session covering %s",
                    reading.id,
                    cuff,
                    measured.isoformat(),
                )
            return views.IngestResult(
                reading_view(reading), duplicate=False, attached=session_id is not None
            )

    async def _watch_cuff_clock(
        self, tx: CachedTx, record: CuffRecord, reading: models.Reading
    ) -> None:
        """A live reading stamped off the receive time raises (or keeps) the cuff's low
        technical alert `cuff_clock_off` ("set its clock"); a live one back within the
        tolerance clears it. The alert is the cuff's, not a session's."""
        cuff = record.cuff
        if not record.clock_off and (
            not record.live or (cuff not in self._clock_off_cuffs and cuff in self._clock_looked_up)
        ):
            return
        self._clock_looked_up.add(cuff)
        condition = f"{AlertKind.CUFF_CLOCK_OFF.value}:{cuff}"
        rows = (
            await tx.session.scalars(
                select(models.Alert).where(
                    models.Alert.condition == condition,
                    models.Alert.state != AlertState.RESOLVED.value,
                )
            )
        ).all()
        open_rows = {row.condition: row for row in rows}
        findings: list[Finding] = []
        clears: list[str] = []
        if record.clock_off:
            assert record.cuff_stamp is not None
            off = record.cuff_stamp - reading.measured_at
            minutes = abs(off.total_seconds()) / 60
            direction = "ahead" if off > timedelta(0) else "behind"
            findings.append(
                Finding(
                    AlertKind.CUFF_CLOCK_OFF,
                    Priority.LOW,
                    f"Cuff {cuff}: its clock is {minutes:.0f} min {direction}; set its "
                    f"clock (reading stamped {record.cuff_stamp.isoformat()}, filed at "
                    f"{reading.measured_at.isoformat()}, when it was received)",
                    subject=cuff,
                )
            )
            self._clock_off_cuffs.add(cuff)
        else:
            clears.append(condition)
            self._clock_off_cuffs.discard(cuff)
        changes = reconcile(
            [alert_of(row) for row in rows],
            findings,
            clears,
            tx.now,
            chair_id=reading.chair_id,
            reading_id=reading.id,
            clear_note="the cuff's clock agrees with ours again",
        )
        await apply_alert_changes(tx, changes, open_rows)

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
        cuff = (text(address, "address", required=True) or "").upper()
        why = text(reason, "reason", required=True)
        key = checked_cuff_key(cuff_key)
        measured = require_utc(at, "at")
        async with self._uow.cached_transaction() as tx:
            session_id = await tx.session_for_cuff(cuff, measured)
            reading = await self._insert_failure(
                tx, session_id, cuff, measured, why or "failed", raw, None, key
            )
            if reading is None:
                stored = await self._stored_reading(
                    tx, cuff, measured, models.UNKNOWN_CUFF_USER, key
                )
                return reading_view(stored)
            await self._touch_device(tx, cuff)
            return reading_view(reading)

    def publish_cuff_pressure(self, address: str, pressure_mmhg: float, at: datetime) -> Event:
        """Live-only: the cuff pressure while it inflates (about once a second)."""
        return self._uow.bus.publish_live(
            EventType.CUFF_PRESSURE,
            require_utc(at, "at"),
            {"device_address": address.upper(), "pressure_mmhg": pressure_mmhg},
        )

    async def _store(
        self, tx: CachedTx, reading: models.Reading, state: SessionState | None, event: EventType
    ) -> bool:
        """INSERT the reading and announce it; the writer's state of its session (if
        kept) includes it. False: it was stored before (nothing done)."""
        reading.id = await self._insert_once(tx, reading)  # type: ignore[assignment]
        if reading.id is None:
            return False
        tx.emit(event, reading_view(reading).as_dict())
        if state is not None:
            state.add_reading(reading)
        return True

    async def _insert_once(self, tx: CachedTx, reading: models.Reading) -> int | None:
        """INSERT the reading unless a unique key matches a stored one (then None): the
        duplicate check is the unique indexes themselves, in one statement."""
        values = {name: getattr(reading, name) for name in READING_COLUMNS}
        connection = await tx.connection()
        result = await connection.execute(self._insert_reading_once, values)
        if self._uow.dialect == "postgresql":
            inserted = result.scalar()
            return None if inserted is None else int(inserted)
        return None if result.rowcount == 0 else int(result.lastrowid)

    async def _stored_reading(
        self, tx: CachedTx, cuff: str, measured: datetime, user_id: int, key: str | None
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
        tx: CachedTx,
        state: SessionState | None,
        facts: ReadingFacts,
        *,
        map_value: float | None,
        device_address: str | None,
        cuff_user_id: int,
        cuff_key: str | None,
        raw: bytes | None,
        recorded_by: str | None,
    ) -> models.Reading | None:
        """Store a reading (valid, or incomplete: one pressure missing) and act on it;
        None if it was stored before."""
        complete = facts.systolic is not None and facts.diastolic is not None and facts.valid
        missing = "diastolic" if facts.diastolic is None else "systolic"
        reading = _reading_row(
            None if state is None else state.row,
            tx.now,
            source=facts.source.value,
            device_address=device_address,
            cuff_user_id=cuff_user_id,
            cuff_key=cuff_key,
            measured_at=facts.measured_at,
            systolic=facts.systolic,
            diastolic=facts.diastolic,
            mean_arterial_pressure=map_value,
            pulse_rate=facts.pulse_rate,
            flags=sorted(f.value for f in facts.flags),
            valid=complete,
            category=(
                blood_pressure_category(facts.systolic, facts.diastolic).value
                if complete and facts.systolic is not None and facts.diastolic is not None
                else None
            ),
            failure_reason=None if complete else f"incomplete: no {missing}",
            raw=raw,
            recorded_by=recorded_by,
        )
        if not await self._store(tx, reading, state, EventType.READING):
            return None
        if state is not None:
            # Also for a closed session: a record the cuff delivers late may satisfy a
            # check (no new alert is raised for a closed session).
            await reevaluate(tx, state, self._stale_after, trigger=reading)
        return reading

    async def _insert_failure(
        self,
        tx: CachedTx,
        session_id: int | None,
        cuff: str,
        measured: datetime,
        reason: str,
        raw: bytes | None,
        user_id: int | None,
        cuff_key: str | None,
    ) -> models.Reading | None:
        """Store a failed measurement; None if it was stored before."""
        state = await tx.cached_state(session_id)
        if session_id is not None and state is None:
            row = await get(tx.session, models.Session, session_id, "session")
        else:
            row = None if state is None else state.row
        reading = _reading_row(
            row,
            tx.now,
            source=ReadingSource.CUFF.value,
            device_address=cuff,
            cuff_user_id=models.UNKNOWN_CUFF_USER if user_id is None else user_id,
            cuff_key=cuff_key,
            measured_at=measured,
            flags=[],
            valid=False,
            failure_reason=reason,
            raw=raw,
        )
        stored = await self._store(tx, reading, state, EventType.MEASUREMENT_FAILED)
        return reading if stored else None

    async def _touch_device(self, tx: CachedTx, address: str) -> None:
        """A cuff delivered a record: its device row exists (a cuff first seen by its
        reading gets one, seen now). Its `last_seen_at` is the link's to keep afterwards
        (`update_device`, which the daemon calls with every measurement): no write per
        reading."""
        known = tx.known_device(address)
        if known is None or known.last_seen_at is None:
            device = await ensure_device(tx.session, address, tx.now)
            if device.last_seen_at is None or device.last_seen_at < tx.now:
                device.last_seen_at = tx.now
            tx.remember_device(address, device.id, device.last_seen_at)


@dataclass(frozen=True)
class _Filed:
    """The time a cuff reading is filed under, when it was received, and whether that
    time can be trusted (`vitalsd.cuff_time`)."""

    at: datetime
    received_at: datetime | None
    clock_off: bool
    untrusted: bool


def _reading_row(
    session: models.Session | None, received_at: datetime, **values: Any
) -> models.Reading:
    """A reading's row, in `session` (None: unattached), received `received_at`; what
    `values` does not give (a failed one's pressures, category, recorder) stays NULL."""
    empty = dict.fromkeys(
        (
            "systolic",
            "diastolic",
            "mean_arterial_pressure",
            "pulse_rate",
            "category",
            "failure_reason",
            "recorded_by",
        )
    )
    return models.Reading(
        session_id=None if session is None else session.id,
        chair_id=None if session is None else session.chair_id,
        patient_id=None if session is None else session.patient_id,
        received_at=received_at,
        **{**empty, **values},
    )

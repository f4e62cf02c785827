"""Read what the exports need from the database (the imperative shell around the builders).

Reads the core's ORM tables (`vitalsd.store.models`) in one `AsyncSession`; writes
nothing. A session that does not exist is `NotFound` (HTTP 404).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from vitalsd.domain import require_utc
from vitalsd.errors import InvalidInput, NotFound
from vitalsd.exports.record import (
    AlertRecord,
    CheckRecord,
    DeviceRecord,
    DoseRecord,
    PatientRecord,
    ReadingRecord,
    SessionRecord,
    SideEffectRecord,
)
from vitalsd.store import models


@asynccontextmanager
async def read_snapshot(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """One read-only transaction, so an export sees one consistent state of the session
    while readings keep arriving: REPEATABLE READ on PostgreSQL (its default, READ
    COMMITTED, would give each SELECT its own snapshot); on SQLite in WAL mode a read
    transaction already sees one snapshot."""
    bound = (
        engine.execution_options(isolation_level="REPEATABLE READ")
        if engine.dialect.name == "postgresql"
        else engine
    )
    async with AsyncSession(bound, expire_on_commit=False) as db, db.begin():
        yield db


def reading_record(row: models.Reading) -> ReadingRecord:
    return ReadingRecord(
        id=row.id,
        measured_at=row.measured_at,
        systolic=row.systolic,
        diastolic=row.diastolic,
        mean_arterial_pressure=row.mean_arterial_pressure,
        pulse_rate=row.pulse_rate,
        source=row.source,
        device_address=row.device_address,
        flags=tuple(row.flags or ()),
        valid=row.valid,
        category=row.category,
        failure_reason=row.failure_reason,
        recorded_by=row.recorded_by,
        session_id=row.session_id,
        patient_id=row.patient_id,
        chair_id=row.chair_id,
    )


def _device_record(row: models.Device) -> DeviceRecord:
    return DeviceRecord(
        address=row.address,
        name=row.name,
        manufacturer=row.manufacturer,
        model=row.model,
        serial=row.serial,
        firmware=row.firmware,
    )


async def load_session_record(db: AsyncSession, session_id: int) -> SessionRecord:
    """The session with its patient, chair, cuffs, readings, doses, checks, alerts and
    side effects."""
    session = await db.get(models.Session, session_id)
    if session is None:
        raise NotFound(f"no session with id {session_id}")
    patient = await db.get(models.Patient, session.patient_id)
    chair = await db.get(models.Chair, session.chair_id)

    readings = (
        await db.scalars(
            select(models.Reading)
            .where(models.Reading.session_id == session_id)
            .order_by(models.Reading.measured_at, models.Reading.id)
        )
    ).all()
    addresses = sorted({r.device_address for r in readings if r.device_address is not None})
    devices = (
        (await db.scalars(select(models.Device).where(models.Device.address.in_(addresses)))).all()
        if addresses
        else []
    )
    doses = (
        await db.scalars(select(models.Dose).where(models.Dose.session_id == session_id))
    ).all()
    checks = (
        await db.scalars(
            select(models.Check)
            .where(models.Check.session_id == session_id)
            .order_by(models.Check.window_start, models.Check.id)
        )
    ).all()
    alerts = (
        await db.scalars(select(models.Alert).where(models.Alert.session_id == session_id))
    ).all()
    side_effects = (
        await db.scalars(
            select(models.SideEffect).where(models.SideEffect.session_id == session_id)
        )
    ).all()

    return SessionRecord(
        id=session.id,
        protocol=session.protocol,
        protocol_toml=session.protocol_toml,
        phase=session.phase,
        course_session=session.course_session,
        started_at=session.started_at,
        started_by=session.started_by,
        closed_at=session.closed_at,
        closed_by=session.closed_by,
        close_reason=session.close_reason,
        chair_name=chair.name if chair is not None else None,
        patient=PatientRecord(
            id=session.patient_id,
            identifier=patient.identifier if patient else None,
            display_name=patient.display_name if patient else None,
            date_of_birth=patient.date_of_birth if patient else None,
        ),
        devices=tuple(_device_record(d) for d in devices),
        readings=tuple(reading_record(r) for r in readings),
        doses=tuple(
            DoseRecord(
                id=d.id,
                drug=d.drug,
                amount_mg=d.amount_mg,
                route=d.route,
                given_at=d.given_at,
                ended_at=d.ended_at,
                increase=d.increase,
                flags=tuple(d.flags or ()),
                override_reason=d.override_reason,
                recorded_by=d.recorded_by,
            )
            for d in doses
        ),
        checks=tuple(
            CheckRecord(
                id=c.id,
                key=c.key,
                kind=c.kind,
                label=c.label,
                window_start=c.window_start,
                window_end=c.window_end,
                state=c.state,
                satisfied_by=c.satisfied_by,
                waiver_reason=c.waiver_reason,
                waived_by=c.waived_by,
                waived_at=c.waived_at,
                required=c.required,
            )
            for c in checks
        ),
        alerts=tuple(
            AlertRecord(
                id=a.id,
                kind=a.kind,
                priority=a.priority,
                state=a.state,
                message=a.message,
                raised_at=a.raised_at,
                acknowledged_at=a.acknowledged_at,
                acknowledged_by=a.acknowledged_by,
                resolved_at=a.resolved_at,
                resolved_by=a.resolved_by,
                resolution_note=a.resolution_note,
                escalated_at=a.escalated_at,
                reading_id=a.reading_id,
                check_id=a.check_id,
                unverified=a.unverified,
            )
            for a in alerts
        ),
        side_effects=tuple(
            SideEffectRecord(
                id=s.id,
                effect=s.effect,
                severity=s.severity,
                observed_at=s.observed_at,
                note=s.note,
                recorded_by=s.recorded_by,
            )
            for s in side_effects
        ),
    )


async def load_readings_between(
    db: AsyncSession,
    start: datetime,
    end: datetime,
    *,
    patient_id: int | None = None,
    chair_id: int | None = None,
) -> list[ReadingRecord]:
    """Readings measured in [start, end), oldest first, optionally of one patient or chair."""
    start = require_utc(start, "start")
    end = require_utc(end, "end")
    if end <= start:
        raise InvalidInput(
            f"end ({end.isoformat()}) must be later than start ({start.isoformat()})"
        )
    query = (
        select(models.Reading)
        .where(models.Reading.measured_at >= start, models.Reading.measured_at < end)
        .order_by(models.Reading.measured_at, models.Reading.id)
    )
    if patient_id is not None:
        query = query.where(models.Reading.patient_id == patient_id)
    if chair_id is not None:
        query = query.where(models.Reading.chair_id == chair_id)
    return [reading_record(r) for r in (await db.scalars(query)).all()]


async def load_patients_and_devices(
    db: AsyncSession, readings: list[ReadingRecord]
) -> tuple[list[PatientRecord], list[DeviceRecord]]:
    """The patients and cuffs the readings name (for a date range's FHIR Bundle)."""
    patient_ids = sorted({r.patient_id for r in readings if r.patient_id is not None})
    addresses = sorted({r.device_address for r in readings if r.device_address is not None})
    patients = (
        (await db.scalars(select(models.Patient).where(models.Patient.id.in_(patient_ids)))).all()
        if patient_ids
        else []
    )
    devices = (
        (await db.scalars(select(models.Device).where(models.Device.address.in_(addresses)))).all()
        if addresses
        else []
    )
    return (
        [
            PatientRecord(
                id=p.id,
                identifier=p.identifier,
                display_name=p.display_name,
                date_of_birth=p.date_of_birth,
            )
            for p in patients
        ],
        [_device_record(d) for d in devices],
    )

"""Sessions written by hand for the export tests: a clock, a patient, a cuff, readings."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

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
from vitalsd.protocol import load_protocol

# The first dose is given at START (minute 0); the session began half an hour before.
START = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
SESSION_START_MINUTE = -30
CUFF = "C0:FF:EE:00:00:01"
REMS_TOML = load_protocol("esketamine-rems").source_text
PSYCHOTHERAPY_TOML = load_protocol("ketamine-psychotherapy").source_text

PATIENT = PatientRecord(
    id=7, identifier="MRN-0042", display_name="Ana Example", date_of_birth=date(1980, 5, 17)
)
OMRON = DeviceRecord(
    address=CUFF,
    name="BP7000",
    manufacturer="OMRON HEALTHCARE",
    model="HEM-7530T",
    serial="20261127001",
    firmware="1.2.3",
)


def minutes(n: float) -> datetime:
    return START + timedelta(minutes=n)


def reading(
    reading_id: int,
    at_minute: float,
    systolic: float = 122.0,
    diastolic: float = 78.0,
    *,
    pulse: float | None = 72.0,
    mean: float | None = None,
    flags: tuple[str, ...] = (),
    source: str = "cuff",
) -> ReadingRecord:
    return ReadingRecord(
        id=reading_id,
        measured_at=minutes(at_minute),
        systolic=systolic,
        diastolic=diastolic,
        mean_arterial_pressure=mean,
        pulse_rate=pulse,
        source=source,
        device_address=CUFF if source == "cuff" else None,
        flags=flags,
        session_id=1,
        patient_id=PATIENT.id,
        chair_id=3,
    )


def failed_reading(reading_id: int, at_minute: float) -> ReadingRecord:
    return ReadingRecord(
        id=reading_id,
        measured_at=minutes(at_minute),
        systolic=None,
        diastolic=None,
        device_address=CUFF,
        valid=False,
        failure_reason="all-NaN error frame",
        session_id=1,
        patient_id=PATIENT.id,
        chair_id=3,
    )


def esketamine_dose(dose_id: int, at_minute: float, amount_mg: float = 56.0) -> DoseRecord:
    return DoseRecord(
        id=dose_id,
        drug="esketamine",
        amount_mg=amount_mg,
        route="intranasal",
        given_at=minutes(at_minute),
        recorded_by="dr.lee",
    )


def session(
    readings: tuple[ReadingRecord, ...] = (),
    *,
    doses: tuple[DoseRecord, ...] = (),
    closed_at_minute: float | None = None,
    protocol: str = "esketamine-rems",
    side_effects: tuple[SideEffectRecord, ...] = (),
    checks: tuple[CheckRecord, ...] = (),
    alerts: tuple[AlertRecord, ...] = (),
) -> SessionRecord:
    return SessionRecord(
        id=1,
        protocol=protocol,
        protocol_toml=REMS_TOML if protocol == "esketamine-rems" else PSYCHOTHERAPY_TOML,
        started_at=minutes(SESSION_START_MINUTE),
        patient=PATIENT,
        chair_name="Chair 3",
        closed_at=None if closed_at_minute is None else minutes(closed_at_minute),
        devices=(OMRON,),
        readings=readings,
        doses=doses,
        side_effects=side_effects,
        checks=checks,
        alerts=alerts,
    )

"""The daemon side of the durability test, run as a real subprocess.

`burst DB START COUNT`: ingest cuff readings START.. on the SQLite file DB, printing each
reading's id as soon as its ingest has returned (that is, after commit).
`report DB`: open the clinic as a restarted daemon would (migrating) and print its state.
The same `setup` and `reading_at` run in-process for the expected state.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, date, datetime, timedelta
from typing import Any

from devices.bps import BloodPressureMeasurement, MeasurementStatus, PressureUnit
from tests.clock import FakeClock
from vitalsd.clinic import Actor, Clinic
from vitalsd.cuff_readings import cuff_reading
from vitalsd.domain import Role
from vitalsd.store.engine import create_engine, migrate

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
CUFF = "AA:BB:CC:00:00:01"
NURSE = Actor("nurse.kim", Role.NURSE)


def time_of(index: int) -> datetime:
    return T0 + timedelta(minutes=3) + timedelta(seconds=40 * index)


def measurement_of(index: int) -> BloodPressureMeasurement:
    """A varied burst: mostly normal, some severe, some low, some flagged; the pulse
    drops below 50 in alternate blocks of 15, so alerts are open at most kill points."""
    systolic, diastolic, status = 124.0 + index % 7, 80.0, MeasurementStatus(0)
    pulse = 44.0 if (index // 15) % 2 == 0 and index >= 3 else 70.0 + index % 5
    if index % 11 == 5:
        systolic, diastolic = 186.0, 112.0
    elif index % 13 == 7:
        systolic, diastolic = 86.0, 58.0
    elif index % 9 == 4:
        status = MeasurementStatus.BODY_MOVEMENT_DETECTED
    mean = round(diastolic + (systolic - diastolic) / 3)
    return BloodPressureMeasurement(
        PressureUnit.MMHG,
        systolic,
        diastolic,
        mean,
        pulse_rate=pulse,
        user_id=1,
        status=status,
    )


async def open_clinic(path: str, clock: FakeClock) -> Clinic:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await migrate(engine)
    return Clinic(engine, clock=clock)


async def setup(clinic: Clinic, clock: FakeClock) -> None:
    patient = await clinic.create_patient("MRN-001", "J. D.", date(1980, 6, 1), by=NURSE)
    chair = await clinic.create_chair("Chair 1", by=NURSE)
    await clinic.assign_cuff(chair.id, CUFF, by=NURSE)
    session = await clinic.start_session(patient.id, chair.id, by=NURSE, course_session=1)
    first = measurement_of(0)
    clock.now = T0 + timedelta(minutes=1)
    await clinic.ingest_cuff_measurement(CUFF, cuff_reading(first), clock.now, bytes(first))
    clock.now = T0 + timedelta(minutes=2)
    await clinic.record_dose(session.id, drug="ketamine", amount_mg=50, route="IM", by=NURSE)


async def ingest(clinic: Clinic, clock: FakeClock, index: int) -> int:
    clock.now = time_of(index)
    m = measurement_of(index)
    result = await clinic.ingest_cuff_measurement(CUFF, cuff_reading(m), clock.now, bytes(m))
    return result.reading.id


async def state(clinic: Clinic) -> dict[str, Any]:
    sessions = await clinic.list_sessions(open_only=True)
    return {
        "sessions": [s.as_dict() for s in sessions],
        "checks": [c.as_dict() for s in sessions for c in await clinic.list_checks(s.id)],
        "alerts": [a.as_dict() for a in await clinic.list_alerts(open_only=True)],
        "readings": len(await clinic.list_readings()),
    }


async def main(argv: list[str]) -> None:
    mode, path = argv[0], argv[1]
    clock = FakeClock(T0)
    clinic = await open_clinic(path, clock)
    try:
        if mode == "burst":
            start, count = int(argv[2]), int(argv[3])
            for index in range(start, start + count):
                reading_id = await ingest(clinic, clock, index)
                print(reading_id, flush=True)
        elif mode == "report":
            print(json.dumps(await state(clinic)), flush=True)
    finally:
        await clinic.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))

"""Storage tests run against SQLite and a real PostgreSQL (a fresh database per test)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from vitalsd.clinic import Actor, Clinic
from vitalsd.domain import Role
from vitalsd.store.engine import create_engine, migrate

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
NURSE = Actor("nurse.kim", Role.NURSE)
CLINICIAN = Actor("dr.lee", Role.CLINICIAN)
CUFF = "AA:BB:CC:00:00:01"


class FakeClock:
    """The clinic's clock in tests: moves only when told."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: float) -> datetime:
        self.now += timedelta(minutes=minutes)
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'vitalsd.sqlite3'}"
    return str(request.getfixturevalue("fresh_postgres_url"))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def clinic(database_url: str, clock: FakeClock) -> AsyncIterator[Clinic]:
    engine = create_engine(database_url)
    await migrate(engine)
    service = Clinic(engine, clock=clock)
    try:
        yield service
    finally:
        await service.close()


class Ward:
    """A patient (aged 44) on chair 1 with a cuff: the usual starting point."""

    def __init__(self, clinic: Clinic, patient_id: int, chair_id: int) -> None:
        self.clinic = clinic
        self.patient_id = patient_id
        self.chair_id = chair_id


@pytest.fixture
async def ward(clinic: Clinic) -> Ward:
    patient = await clinic.create_patient("MRN-001", "J. D.", date(1980, 6, 1), by=NURSE)
    chair = await clinic.create_chair("Chair 1", by=NURSE)
    await clinic.assign_cuff(chair.id, CUFF, by=NURSE)
    return Ward(clinic, patient.id, chair.id)

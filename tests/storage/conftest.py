"""Storage tests run against SQLite and a real PostgreSQL (a fresh database per test)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.clock import FakeClock
from tests.postgres_cluster import PostgresCluster
from vitalsd.clinic import Actor, Clinic
from vitalsd.domain import Role
from vitalsd.store.engine import create_engine, migrate
from vitalsd.store.models import Base, EventCounter

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
NURSE = Actor("nurse.kim", Role.NURSE)
CLINICIAN = Actor("dr.lee", Role.CLINICIAN)
CUFF = "AA:BB:CC:00:00:01"


@pytest.fixture(scope="session")
def migrated_postgres_url(postgres_cluster: PostgresCluster) -> str:
    """One PostgreSQL database migrated once for the run; each test empties it first
    (far faster than a new database per test, and just as independent)."""
    url = postgres_cluster.database()
    # Requested from inside a running event loop: migrate on a thread with its own.
    with ThreadPoolExecutor(1) as worker:
        worker.submit(asyncio.run, migrate(url)).result()
    return url


async def emptied(url: str) -> str:
    """Every table emptied and every id and the event counter back at the start.
    TRUNCATE does not fire the append-only row triggers; no code path issues it."""
    tables = ", ".join(
        t.name for t in Base.metadata.sorted_tables if t.name != EventCounter.__tablename__
    )
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            await connection.execute(text("UPDATE event_counter SET last_seq = 0"))
    finally:
        await engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty, migrated database (migrating again is a no-op)."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'vitalsd.sqlite3'}"
        await migrate(url)
        return url
    return await emptied(str(request.getfixturevalue("migrated_postgres_url")))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def clinic(database_url: str, clock: FakeClock) -> AsyncIterator[Clinic]:
    service = Clinic(create_engine(database_url), clock=clock)
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

"""A real clinic for the export routes: the core's service on a real (SQLite) database,
the API engineer's app factory, tokens for a nurse, a clinician and an admin."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from devices.bps import BloodPressureMeasurement, MeasurementStatus, PressureUnit
from tests.clock import FakeClock
from vitalsd.auth import TokenIssuer
from vitalsd.clinic import Actor, Clinic
from vitalsd.cuff_readings import cuff_reading
from vitalsd.domain import Role
from vitalsd.settings import Settings
from vitalsd.store.engine import create_engine, migrate

T0 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
CUFF = "C0:FF:EE:00:00:07"
SECRET = b"exports-test-secret-of-32-bytes!"
NURSE = Actor("nurse.kim", Role.NURSE)
CLINICIAN = Actor("dr.lee", Role.CLINICIAN)
ADMIN = Actor("admin.ops", Role.ADMIN)


@dataclass(frozen=True)
class EsketamineSession:
    """A closed esketamine session: kPa cuff readings before and 40 min after the dose
    (the second flagged for body movement), a side effect, a manual reading before
    completion."""

    id: int
    patient_id: int
    chair_id: int


def kpa_measurement(
    systolic_kpa: float, diastolic_kpa: float, mean_kpa: float, **fields: Any
) -> tuple[BloodPressureMeasurement, bytes]:
    """A measurement as the cuff sends it in kPa, through the codec both ways."""
    raw = bytes(
        BloodPressureMeasurement(PressureUnit.KPA, systolic_kpa, diastolic_kpa, mean_kpa, **fields)
    )
    return BloodPressureMeasurement.from_bytes(raw), raw


async def record_esketamine_session(clinic: Clinic, clock: FakeClock) -> EsketamineSession:
    patient = await clinic.create_patient("MRN-0042", "Ana Example", date(1980, 5, 17), by=NURSE)
    chair = await clinic.create_chair("Chair 3", by=NURSE)
    await clinic.assign_cuff(chair.id, CUFF, by=NURSE)
    await clinic.update_device(
        CUFF, manufacturer="OMRON HEALTHCARE", model="HEM-7530T", serial="SN-0001",
        firmware="1.2.3",
    )  # fmt: skip
    started = await clinic.start_session(
        patient.id, chair.id, by=CLINICIAN, protocol="esketamine-rems"
    )
    # Baseline: 16.0/10.6 kPa = 120.0/79.5 mmHg.
    measurement, raw = kpa_measurement(16.0, 10.6, 12.4, pulse_rate=72.0)
    await clinic.ingest_cuff_measurement(CUFF, cuff_reading(measurement), clock.advance(5), raw)
    await clinic.record_dose(
        started.id, drug="esketamine", amount_mg=56, route="intranasal", by=CLINICIAN,
        given_at=clock.advance(5),
    )  # fmt: skip
    measurement, raw = kpa_measurement(
        17.3, 11.3, 13.3, pulse_rate=80.0, status=MeasurementStatus.BODY_MOVEMENT_DETECTED
    )
    await clinic.ingest_cuff_measurement(CUFF, cuff_reading(measurement), clock.advance(40), raw)
    await clinic.record_side_effect(
        started.id, effect="dissociation", severity=2, by=NURSE, observed_at=clock.advance(5)
    )
    clock.advance(80)
    await clinic.record_manual_reading(
        started.id, systolic=124, diastolic=79, pulse_rate=70, by=NURSE, measured_at=clock.now
    )
    clock.advance(5)
    await clinic.close_session(started.id, by=CLINICIAN)
    return EsketamineSession(started.id, patient.id, chair.id)


async def open_clinic(url: str, clock: FakeClock, *, fresh: bool) -> Clinic:
    engine = create_engine(url)
    if fresh:
        await migrate(engine)
    clinic = Clinic(engine, clock=clock)
    if fresh:
        for actor in (NURSE, CLINICIAN, ADMIN):
            await clinic.create_user(actor.username, "not-a-real-hash", actor.role)
    return clinic


@dataclass(frozen=True)
class Template:
    """A migrated SQLite database holding the esketamine session, built once per run
    and copied for each test (a migration and a dozen fsync'd commits take ~1 s)."""

    path: Path
    session: EsketamineSession
    ends_at: datetime


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    path = tmp_path_factory.mktemp("exports") / "template.sqlite3"
    clock = FakeClock(T0)

    async def build() -> EsketamineSession:
        clinic = await open_clinic(f"sqlite+aiosqlite:///{path}", clock, fresh=True)
        try:
            return await record_esketamine_session(clinic, clock)
        finally:
            await clinic.close()

    recorded = asyncio.run(build())
    return Template(path, recorded, clock.now)


@pytest.fixture
def clock(template: Template) -> FakeClock:
    clock = FakeClock(T0)
    clock.now = template.ends_at
    return clock


@pytest.fixture
async def clinic(template: Template, clock: FakeClock, tmp_path: Path) -> AsyncIterator[Clinic]:
    copy = tmp_path / "vitalsd.sqlite3"
    for suffix in ("", "-wal"):
        source = template.path.with_name(template.path.name + suffix)
        if source.exists():
            shutil.copyfile(source, copy.with_name(copy.name + suffix))
    service = await open_clinic(f"sqlite+aiosqlite:///{copy}", clock, fresh=False)
    try:
        yield service
    finally:
        await service.close()


@pytest.fixture
def esketamine_session(template: Template) -> EsketamineSession:
    return template.session


@pytest.fixture
async def client(
    clinic: Clinic, clock: FakeClock, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        clinic,
        Settings(data_dir=tmp_path),
        tokens=TokenIssuer(SECRET),
        clock=clock,
        static_dir=tmp_path / "static",
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://vitalsd.test") as http:
        yield http


def bearer(actor: Actor, clock: FakeClock) -> dict[str, str]:
    token = TokenIssuer(SECRET).issue(actor.username, actor.role, clock())
    return {"Authorization": f"Bearer {token}"}

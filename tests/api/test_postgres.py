"""The API on PostgreSQL (a clinic group's database): a session's first reading and its
alert, end to end, and ids beyond PostgreSQL's INTEGER refused before the database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from tests.api.conftest import ADMIN, FakeClock
from vitalsd.auth import PasswordHasher, TokenIssuer
from vitalsd.clinic import Clinic
from vitalsd.domain import Role
from vitalsd.settings import Settings
from vitalsd.store.engine import create_engine, migrate


@pytest.fixture
async def pg_client(
    fresh_postgres_url: str,
    tmp_path: Path,
    clock: FakeClock,
    tokens: TokenIssuer,
    passwords: PasswordHasher,
    password_hash: str,
) -> AsyncIterator[tuple[httpx.AsyncClient, Clinic]]:
    engine = create_engine(fresh_postgres_url)
    await migrate(engine)
    clinic = Clinic(engine, clock=clock)
    for role in Role:
        await clinic.create_user(role.value, password_hash, role)
    app = create_app(
        clinic, Settings(data_dir=tmp_path), tokens=tokens, passwords=passwords, clock=clock
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://vitalsd.test") as client:
        yield client, clinic
    await clinic.close()


async def test_severe_manual_reading_raises_an_alert_on_postgresql(
    pg_client: tuple[httpx.AsyncClient, Clinic], auth: dict[Role, dict[str, str]]
) -> None:
    client, clinic = pg_client
    patient = await clinic.create_patient("MRN-PG", "Robin Poe", date(1970, 1, 1), by=ADMIN)
    chair = await clinic.create_chair("Chair PG", by=ADMIN)
    session = await client.post(
        "/api/sessions",
        json={"patient_id": patient.id, "chair_id": chair.id},
        headers=auth[Role.CLINICIAN],
    )
    reading = await client.post(
        f"/api/sessions/{session.json()['id']}/readings",
        json={"systolic": 188, "diastolic": 114},
        headers=auth[Role.NURSE],
    )
    assert reading.status_code == 201
    alerts = await client.get("/api/alerts?open=true", headers=auth[Role.NURSE])
    assert "severe_hypertension" in [a["kind"] for a in alerts.json()]


async def test_id_past_postgresql_integer_is_422_not_a_database_error(
    pg_client: tuple[httpx.AsyncClient, Clinic], auth: dict[Role, dict[str, str]]
) -> None:
    client, _ = pg_client
    response = await client.get(f"/api/patients/{2**31}", headers=auth[Role.NURSE])
    assert response.status_code == 422


async def test_admission_search_and_history_on_postgresql(
    pg_client: tuple[httpx.AsyncClient, Clinic], auth: dict[Role, dict[str, str]]
) -> None:
    """Issue #14's reads (a case-blind search, the grouped history) on PostgreSQL."""
    client, clinic = pg_client
    patient = await clinic.create_patient("MRN-PG-7", "Élodie Márquez", date(1970, 1, 1), by=ADMIN)
    chair = await clinic.create_chair("Chair PG 7", by=ADMIN)
    found = await client.get("/api/patients", params={"q": "élodie"}, headers=auth[Role.NURSE])
    assert [p["id"] for p in found.json()] == [patient.id]
    admitted = await client.post(
        "/api/admissions",
        json={"patient_id": patient.id, "chair_id": chair.id},
        headers=auth[Role.CLINICIAN],
    )
    assert admitted.status_code == 201
    await client.post(
        f"/api/sessions/{admitted.json()['id']}/readings",
        json={"systolic": 150, "diastolic": 95},
        headers=auth[Role.NURSE],
    )
    history = await client.get(f"/api/patients/{patient.id}/history", headers=auth[Role.NURSE])
    (only,) = history.json()["sessions"]
    assert (only["peak"]["systolic"], only["course_session"]) == (150.0, 1)

"""Issue #13, low finding, over REST: the age-65 rule uses the clinic's local date of the
session start (setting `timezone`), not the UTC date (DESIGN.md "Safety rules": "Time")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.api.conftest import Ward, open_clinic
from tests.clock import FakeClock
from vitalsd.clinic import Clinic
from vitalsd.domain import Role

Auth = dict[Role, dict[str, str]]
# 19:30 in New York on 14 January 2026 (EST), already 15 January in UTC.
EVENING = datetime(2026, 1, 15, 0, 30, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(EVENING)


@pytest.fixture
async def clinic(
    database_template: Path, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Clinic]:
    service = await open_clinic(
        database_template, tmp_path, clock=clock, zone=ZoneInfo("America/New_York")
    )
    try:
        yield service
    finally:
        await service.close()


async def test_low_finding_the_evening_before_a_65th_birthday_counts_as_64_in_the_clinics_zone(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clock: FakeClock
) -> None:
    """Born 15 January 1961: 65 on the UTC date of this 19:30 New York session, 64 on
    its local date. At 64, a baseline of 145/80 is elevated (>= 140; from 65 only >= 150)."""
    patient = await client.post(
        "/api/patients",
        json={"identifier": "MRN-65", "display_name": "Eve Ning", "date_of_birth": "1961-01-15"},
        headers=auth[Role.CLINICIAN],
    )
    session = await client.post(
        "/api/sessions",
        json={"patient_id": patient.json()["id"], "chair_id": ward.chair_id},
        headers=auth[Role.CLINICIAN],
    )
    session_id = session.json()["id"]
    for _ in range(2):
        clock.advance(2)
        taken = await client.post(
            f"/api/sessions/{session_id}/readings",
            json={"systolic": 145, "diastolic": 80},
            headers=auth[Role.NURSE],
        )
        assert taken.status_code == 201, taken.text
    alerts = await client.get(
        "/api/alerts", params={"session_id": session_id}, headers=auth[Role.NURSE]
    )
    kinds = [a["kind"] for a in alerts.json()]
    assert kinds == ["elevated_baseline"]

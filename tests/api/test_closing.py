"""Closing a session over REST (DESIGN.md "Safety rules": "Closing"), each test
replaying a finding of the clinical review (#13)."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx

from tests.api.conftest import ADMIN, Ward
from tests.api.test_dosing_gate import dose, readings
from tests.api.test_sessions import start
from tests.clock import FakeClock
from vitalsd.clinic import Clinic
from vitalsd.domain import Role

Auth = dict[Role, dict[str, str]]


async def close(
    client: httpx.AsyncClient, auth: Auth, session_id: int, role: Role, **body: Any
) -> httpx.Response:
    return await client.post(f"/api/sessions/{session_id}/close", json=body, headers=auth[role])


async def test_finding_6_closing_over_a_standing_rise_needs_a_reason_and_clears_the_chair(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clock: FakeClock, clinic: Clinic
) -> None:
    session = await start(client, auth, ward)
    sid = session["id"]
    await readings(client, auth, clock, sid, (120, 78), (122, 76))
    assert (await dose(client, auth, sid)).status_code == 201
    clock.advance(40)
    await readings(client, auth, clock, sid, (178, 108))
    standing = (
        await client.get("/api/alerts", params={"session_id": sid}, headers=auth[Role.NURSE])
    ).json()
    assert any(a["priority"] in ("high", "medium") for a in standing)

    refused = await close(client, auth, sid, Role.CLINICIAN)
    assert refused.status_code == 409
    assert "178/108 mmHg is not stable" in refused.json()["detail"]
    closed = await close(client, auth, sid, Role.CLINICIAN, reason="sent to ED with escort")
    assert closed.status_code == 200, closed.text

    after = (
        await client.get("/api/alerts", params={"session_id": sid}, headers=auth[Role.NURSE])
    ).json()
    assert after and all(a["state"] == "resolved" for a in after)
    open_before = {a["id"] for a in standing if a["state"] != "resolved"}
    assert {a["resolution_note"] for a in after if a["id"] in open_before} == {
        "session closed: sent to ED with escort"
    }

    # The next patient in the chair sees nothing of the previous one.
    patient = await clinic.create_patient("MRN-2", "Sam Roe", date(1975, 1, 2), by=ADMIN)
    next_session = await client.post(
        "/api/sessions",
        json={"patient_id": patient.id, "chair_id": ward.chair_id},
        headers=auth[Role.CLINICIAN],
    )
    assert next_session.status_code == 201
    snapshot = await clinic.snapshot()
    assert [a for a in snapshot.active_alerts if a.chair_id == ward.chair_id] == []


async def test_finding_6_a_reading_three_hours_before_the_close_does_not_satisfy_it(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clock: FakeClock
) -> None:
    session = await start(client, auth, ward)
    sid = session["id"]
    await readings(client, auth, clock, sid, (120, 78), (122, 76))
    assert (await dose(client, auth, sid)).status_code == 201
    clock.advance(30)
    await readings(client, auth, clock, sid, (124, 80))
    clock.advance(180)
    # Overdue checks and staleness are settled by the reading below; only the close
    # reading is missing.
    refused = await close(client, auth, sid, Role.CLINICIAN)
    assert refused.status_code == 409
    assert "no close-of-session reading in the 15 minutes" in refused.json()["detail"]
    await readings(client, auth, clock, sid, (121, 77))
    closed = await close(client, auth, sid, Role.CLINICIAN)
    assert closed.status_code == 200, closed.text

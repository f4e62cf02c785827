"""Issue #13 finding 13 over REST: a cuff frame with systolic but no diastolic (or the
reverse) is kept as an incomplete reading with its pulse, satisfies no check, and a value
in the severe range still alerts, unverified, with a `remeasure` prompt (DESIGN.md
"Safety rules": "Partial frames")."""

from __future__ import annotations

import math

import httpx

from devices.bps import BloodPressureMeasurement, PressureUnit
from tests.api.conftest import CUFF, Ward
from tests.clock import FakeClock
from vitalsd.clinic import Clinic
from vitalsd.cuff_readings import cuff_reading
from vitalsd.domain import Role

Auth = dict[Role, dict[str, str]]


async def partial_frame(
    clinic: Clinic, clock: FakeClock, systolic: float, diastolic: float, pulse: float
) -> None:
    """A cuff's frame as the supervisor hands it over, one pressure NaN (not all: that
    would be an error frame)."""
    frame = BloodPressureMeasurement(
        unit=PressureUnit.MMHG,
        systolic=systolic,
        diastolic=diastolic,
        mean_arterial_pressure=math.nan,
        pulse_rate=pulse,
    )
    await clinic.ingest_cuff_measurement(CUFF, cuff_reading(frame), clock(), bytes(frame))


async def start(client: httpx.AsyncClient, auth: Auth, ward: Ward) -> int:
    response = await client.post(
        "/api/sessions",
        json={"patient_id": ward.patient_id, "chair_id": ward.chair_id},
        headers=auth[Role.CLINICIAN],
    )
    assert response.status_code == 201
    return int(response.json()["id"])


async def test_finding_13_systolic_210_without_diastolic_is_kept_and_alerts_unverified(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clinic: Clinic, clock: FakeClock
) -> None:
    """Finding 13: systolic 210, no diastolic, pulse 135 (stored as an "error frame", the
    pulse dropped, nothing alerted)."""
    session_id = await start(client, auth, ward)
    clock.advance(2)
    await partial_frame(clinic, clock, 210, math.nan, 135)
    readings = await client.get(f"/api/sessions/{session_id}/readings", headers=auth[Role.NURSE])
    (reading,) = readings.json()
    assert (reading["systolic"], reading["diastolic"], reading["pulse_rate"]) == (210, None, 135)
    assert reading["valid"] is False and "incomplete" in reading["flags"]
    assert reading["failure_reason"] == "incomplete: no diastolic"
    assert reading["category"] is None
    alerts = await client.get(
        "/api/alerts", params={"session_id": session_id}, headers=auth[Role.NURSE]
    )
    by_kind = {a["kind"]: a for a in alerts.json()}
    severe = by_kind["severe_hypertension"]
    assert (severe["priority"], severe["state"], severe["unverified"]) == ("high", "active", True)
    assert "210/?" in severe["message"] and "unverified" in severe["message"]
    assert by_kind["remeasure"]["state"] == "active"
    assert "no diastolic" in by_kind["remeasure"]["message"]
    assert by_kind["pulse_out_of_range"]["state"] == "active"
    checks = await client.get(f"/api/sessions/{session_id}/checks", headers=auth[Role.NURSE])
    assert all(c["state"] != "satisfied" for c in checks.json())


async def test_finding_13_diastolic_without_systolic_below_severe_only_asks_to_remeasure(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clinic: Clinic, clock: FakeClock
) -> None:
    """The reverse frame (no systolic), diastolic 88, pulse 72: kept, a remeasure prompt,
    no severe alert; and it clears nothing a full reading raised."""
    session_id = await start(client, auth, ward)
    clock.advance(1)
    await partial_frame(clinic, clock, math.nan, 88, 72)
    readings = await client.get(f"/api/sessions/{session_id}/readings", headers=auth[Role.NURSE])
    (reading,) = readings.json()
    assert (reading["systolic"], reading["diastolic"], reading["pulse_rate"]) == (None, 88, 72)
    assert "incomplete" in reading["flags"]
    alerts = await client.get(
        "/api/alerts", params={"session_id": session_id}, headers=auth[Role.NURSE]
    )
    assert sorted(a["kind"] for a in alerts.json()) == ["remeasure"]
    assert "no systolic" in alerts.json()[0]["message"]


async def test_finding_13_a_partial_frame_clears_no_severe_alert(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clinic: Clinic, clock: FakeClock
) -> None:
    session_id = await start(client, auth, ward)
    clock.advance(1)
    full = BloodPressureMeasurement(PressureUnit.MMHG, 190, 115, 140, pulse_rate=80)
    await clinic.ingest_cuff_measurement(CUFF, cuff_reading(full), clock(), bytes(full))
    clock.advance(1)
    await partial_frame(clinic, clock, 120, math.nan, 80)
    alerts = await client.get(
        "/api/alerts",
        params={"session_id": session_id, "kind": "severe_hypertension"},
        headers=auth[Role.NURSE],
    )
    (severe,) = alerts.json()
    assert severe["state"] == "active"
    assert "190/115" in severe["message"]

"""A severe side effect over REST (DESIGN.md "Safety rules": "Monitor until stable")."""

from __future__ import annotations

from datetime import timedelta

import httpx

from tests.api.conftest import Ward
from tests.api.test_dosing_gate import dose, readings
from tests.api.test_sessions import start
from tests.clock import FakeClock
from vitalsd.clinic import Clinic
from vitalsd.domain import Role

Auth = dict[Role, dict[str, str]]


async def test_a_severe_side_effect_raises_a_medium_alert_and_a_check_five_minutes_later(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clock: FakeClock, clinic: Clinic
) -> None:
    session = await start(client, auth, ward)
    sid = session["id"]
    await readings(client, auth, clock, sid, (120, 78), (122, 76))
    assert (await dose(client, auth, sid)).status_code == 201
    clock.advance(10)
    logged = await client.post(
        f"/api/sessions/{sid}/side-effects",
        json={"effect": "dissociation", "severity": 3},
        headers=auth[Role.NURSE],
    )
    assert logged.status_code == 201, logged.text
    effect_id = logged.json()["id"]
    alerts = await client.get(
        "/api/alerts",
        params={"session_id": sid, "kind": "severe_side_effect"},
        headers=auth[Role.NURSE],
    )
    [alert] = alerts.json()
    assert (alert["priority"], alert["state"]) == ("medium", "active")
    assert "dissociation" in alert["message"]
    checks = await client.get(f"/api/sessions/{sid}/checks", headers=auth[Role.NURSE])
    [check] = [c for c in checks.json() if c["key"] == f"side_effect:s{effect_id}"]
    assert check["kind"] == "post_dose"
    assert check["window_start"] == (clock.now + timedelta(minutes=5)).isoformat()

    # No reading in its window: overdue, with its alert.
    clock.advance(16)
    await clinic.apply_time()
    checks = await client.get(f"/api/sessions/{sid}/checks", headers=auth[Role.NURSE])
    [check] = [c for c in checks.json() if c["key"] == f"side_effect:s{effect_id}"]
    assert check["state"] == "overdue"


async def test_a_mild_side_effect_raises_nothing(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clock: FakeClock
) -> None:
    session = await start(client, auth, ward)
    logged = await client.post(
        f"/api/sessions/{session['id']}/side-effects",
        json={"effect": "nausea", "severity": 2},
        headers=auth[Role.NURSE],
    )
    assert logged.status_code == 201, logged.text
    alerts = await client.get(
        "/api/alerts", params={"session_id": session["id"]}, headers=auth[Role.NURSE]
    )
    assert [a["kind"] for a in alerts.json() if a["kind"] == "severe_side_effect"] == []
    checks = await client.get(f"/api/sessions/{session['id']}/checks", headers=auth[Role.NURSE])
    assert not [c for c in checks.json() if c["key"].startswith("side_effect:")]


async def test_a_severe_side_effect_entered_late_asks_for_a_check_from_its_entry(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clock: FakeClock, clinic: Clinic
) -> None:
    """Observed 20 minutes ago, entered now: the check is due from now (not overdue the
    moment it is saved, and not waived for being asked after its window)."""
    session = await start(client, auth, ward)
    sid = session["id"]
    await readings(client, auth, clock, sid, (120, 78), (122, 76))
    assert (await dose(client, auth, sid)).status_code == 201
    clock.advance(30)
    observed = clock.now - timedelta(minutes=20)
    logged = await client.post(
        f"/api/sessions/{sid}/side-effects",
        json={"effect": "vomiting", "severity": 3, "observed_at": observed.isoformat()},
        headers=auth[Role.NURSE],
    )
    assert logged.status_code == 201, logged.text
    body = logged.json()
    assert (body["observed_at"], body["recorded_at"]) == (
        observed.isoformat(),
        clock.now.isoformat(),
    )
    checks = await client.get(f"/api/sessions/{sid}/checks", headers=auth[Role.NURSE])
    [check] = [c for c in checks.json() if c["key"] == f"side_effect:s{body['id']}"]
    assert (check["window_start"], check["state"]) == (clock.now.isoformat(), "due")

    # A reading now satisfies it.
    await readings(client, auth, clock, sid, (130, 80))
    checks = await client.get(f"/api/sessions/{sid}/checks", headers=auth[Role.NURSE])
    [check] = [c for c in checks.json() if c["key"] == f"side_effect:s{body['id']}"]
    assert check["state"] == "satisfied"

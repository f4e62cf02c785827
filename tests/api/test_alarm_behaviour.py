"""Alarm behaviour over REST (DESIGN.md "Safety rules": IEC 60601-1-8 style), each test
replaying a finding of the clinical review (#13)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from tests.api.conftest import Ward
from tests.api.test_sessions import reading, start
from tests.clock import FakeClock
from vitalsd.domain import Role

Auth = dict[Role, dict[str, str]]


async def alerts_of(
    client: httpx.AsyncClient, auth: Auth, session_id: int, kind: str
) -> list[dict[str, Any]]:
    response = await client.get(
        "/api/alerts", params={"session_id": session_id, "kind": kind}, headers=auth[Role.NURSE]
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


async def test_finding_8_a_high_alert_latches_when_its_condition_clears(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clock: FakeClock
) -> None:
    """A manual 188/112, the cuff 116/78 two seconds later: the alert stays on screen,
    marked as cleared, until someone acknowledges it; no new alert per reading."""
    session = await start(client, auth, ward)
    await reading(client, auth, session["id"], 188, 112)
    clock.advance(seconds=2)
    await reading(client, auth, session["id"], 116, 78)
    [alert] = await alerts_of(client, auth, session["id"], "severe_hypertension")
    assert (alert["state"], alert["condition_cleared_at"]) == ("active", clock.now.isoformat())
    assert "188/112" in alert["message"]
    assert alert["limit"] == "≥ 180/110 mmHg"  # the limit crossed, kept (issue #14)

    # The condition comes back: the same alert, unlatched, no duplicate.
    clock.advance(1)
    await reading(client, auth, session["id"], 186, 110)
    [alert] = await alerts_of(client, auth, session["id"], "severe_hypertension")
    assert (alert["state"], alert["condition_cleared_at"]) == ("active", None)
    assert "186/110" in alert["latest_message"]

    # Cleared again, then acknowledged: it is done, kept in the audit.
    clock.advance(1)
    await reading(client, auth, session["id"], 118, 76)
    acked = await client.post(f"/api/alerts/{alert['id']}/acknowledge", headers=auth[Role.NURSE])
    assert acked.status_code == 200, acked.text
    assert acked.json()["state"] == "resolved"
    assert acked.json()["acknowledged_by"] == "nurse"


async def test_finding_9_an_acknowledged_alert_that_worsens_sounds_again(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clock: FakeClock
) -> None:
    """Acknowledged at 186/112, then 230/135: active again, showing the new value."""
    session = await start(client, auth, ward)
    await reading(client, auth, session["id"], 186, 112)
    [alert] = await alerts_of(client, auth, session["id"], "severe_hypertension")
    await client.post(f"/api/alerts/{alert['id']}/acknowledge", headers=auth[Role.NURSE])

    # Not worse by the policy's steps (10 systolic, 5 diastolic): it stays acknowledged
    # but follows the latest value.
    clock.advance(1)
    await reading(client, auth, session["id"], 190, 114)
    [alert] = await alerts_of(client, auth, session["id"], "severe_hypertension")
    assert alert["state"] == "acknowledged"
    assert "190/114" in alert["latest_message"]
    assert "186/112" in alert["message"]

    clock.advance(1)
    worse = await reading(client, auth, session["id"], 230, 135)
    [alert] = await alerts_of(client, auth, session["id"], "severe_hypertension")
    assert alert["state"] == "active"
    assert "230/135" in alert["message"]
    assert alert["latest_reading_id"] == worse.json()["id"]
    trail = await client.get(
        "/api/audit", params={"entity": "alert", "entity_id": alert["id"]}, headers=auth[Role.ADMIN]
    )
    assert trail.status_code == 200, trail.text
    actions = [a["action"] for a in trail.json()]
    assert actions[-1] == "worsened"


async def test_finding_9_snoozes_of_a_high_alert_add_up_to_five_minutes(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clock: FakeClock
) -> None:
    session = await start(client, auth, ward)
    await reading(client, auth, session["id"], 186, 112)
    [alert] = await alerts_of(client, auth, session["id"], "severe_hypertension")
    url = f"/api/alerts/{alert['id']}/snooze"
    first = await client.post(url, json={"minutes": 3}, headers=auth[Role.NURSE])
    assert first.status_code == 200, first.text
    clock.advance(1)
    # Renewing to now + 2 min adds nothing past the running snooze's end: allowed.
    same_end = await client.post(url, json={"minutes": 2}, headers=auth[Role.NURSE])
    assert same_end.status_code == 200, same_end.text
    # Renewing to now + 5 min would make 6 minutes of snoozing in all: refused.
    renewed = await client.post(url, json={"minutes": 5}, headers=auth[Role.NURSE])
    assert renewed.status_code == 422
    assert "5 minutes in all" in renewed.text
    more = await client.post(url, json={"minutes": 3}, headers=auth[Role.NURSE])
    assert more.status_code == 200, more.text
    assert more.json()["snoozed_until"] == (clock.now + timedelta(minutes=3)).isoformat()

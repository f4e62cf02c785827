"""The dosing gate over REST (DESIGN.md "Safety rules": "Dosing gate"): every dose,
first or later, each test replaying a finding of the clinical review (#13)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import Ward
from tests.api.test_sessions import reading, start
from tests.clock import FakeClock
from vitalsd.domain import Role

Auth = dict[Role, dict[str, str]]
DOSE = {"drug": "ketamine", "amount_mg": 35, "route": "IM"}


async def dose(
    client: httpx.AsyncClient, auth: Auth, session_id: int, **extra: Any
) -> httpx.Response:
    return await client.post(
        f"/api/sessions/{session_id}/doses", json=DOSE | extra, headers=auth[Role.CLINICIAN]
    )


async def readings(
    client: httpx.AsyncClient,
    auth: Auth,
    clock: FakeClock,
    session_id: int,
    *pressures: tuple[int, int],
) -> None:
    for systolic, diastolic in pressures:
        response = await reading(client, auth, session_id, systolic, diastolic)
        assert response.status_code == 201, response.text
        clock.advance(2)


@pytest.mark.parametrize("second", [(185, 100), (179, 99)])
async def test_finding_1_a_hold_range_latest_reading_stops_the_dose_whatever_the_mean(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clock: FakeClock, second: tuple[int, int]
) -> None:
    """120/70 then 185/100 (mean 152/85) or 179/99: refused without an override."""
    session = await start(client, auth, ward)
    await readings(client, auth, clock, session["id"], (120, 70), second)
    refused = await dose(client, auth, session["id"])
    assert refused.status_code == 409, refused.text
    assert f"{second[0]}/{second[1]}" in refused.json()["detail"]
    given = await dose(client, auth, session["id"], override_reason="repeat, discussed")
    assert given.status_code == 201, given.text
    assert given.json()["flags"] == ["hold_overridden"]
    assert given.json()["override_reason"] == "repeat, discussed"


async def test_finding_2_a_new_hold_range_reading_after_an_acknowledged_hold_stops_the_dose(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clock: FakeClock
) -> None:
    session = await start(client, auth, ward)
    await readings(client, auth, clock, session["id"], (172, 104))
    [hold] = (
        await client.get(
            "/api/alerts",
            params={"session_id": session["id"], "kind": "dosing_hold"},
            headers=auth[Role.NURSE],
        )
    ).json()
    acked = await client.post(f"/api/alerts/{hold['id']}/acknowledge", headers=auth[Role.CLINICIAN])
    assert acked.json()["state"] == "acknowledged"
    await readings(client, auth, clock, session["id"], (188, 118))
    # The hold re-arms: worse than when it last sounded, active again with the new value.
    [hold] = (
        await client.get(
            "/api/alerts",
            params={"session_id": session["id"], "kind": "dosing_hold"},
            headers=auth[Role.NURSE],
        )
    ).json()
    assert hold["state"] == "active"
    assert "172/104" not in hold["message"]
    refused = await dose(client, auth, session["id"])
    assert refused.status_code == 409
    assert "188/118" in refused.json()["detail"]
    nurse = await client.post(
        f"/api/sessions/{session['id']}/doses",
        json=DOSE | {"override_reason": "looks fine"},
        headers=auth[Role.NURSE],
    )
    assert nurse.status_code == 403  # an override is a clinician's


async def test_finding_3_a_booster_after_a_severe_reading_is_gated_and_checked(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clock: FakeClock
) -> None:
    session = await start(client, auth, ward)
    await readings(client, auth, clock, session["id"], (122, 78), (120, 76))
    first = await dose(client, auth, session["id"])
    assert (first.status_code, first.json()["flags"]) == (201, [])
    clock.advance(5)
    await readings(client, auth, clock, session["id"], (186, 112))
    refused = await dose(client, auth, session["id"], amount_mg=20)
    assert refused.status_code == 409
    assert "severe hypertension" in refused.json()["detail"]
    booster = await dose(client, auth, session["id"], amount_mg=20, override_reason="as planned")
    assert booster.status_code == 201, booster.text
    assert booster.json()["flags"] == ["hold_overridden"]
    checks = await client.get(f"/api/sessions/{session['id']}/checks", headers=auth[Role.NURSE])
    post_dose = [c for c in checks.json() if c["kind"] == "post_dose"]
    assert len(post_dose) >= 2  # the booster has its own post-dose check


async def test_finding_12_a_dose_without_a_baseline_is_flagged_and_still_checked(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clock: FakeClock
) -> None:
    session = await start(client, auth, ward)
    given = await dose(client, auth, session["id"])
    assert given.json()["flags"] == ["no_baseline"]
    checks = await client.get(f"/api/sessions/{session['id']}/checks", headers=auth[Role.NURSE])
    assert "post_dose" in [c["kind"] for c in checks.json()]


async def test_a_dose_with_no_reading_in_the_last_30_minutes_is_flagged_no_recent_bp(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clock: FakeClock
) -> None:
    session = await start(client, auth, ward)
    await readings(client, auth, clock, session["id"], (122, 78), (120, 76))
    clock.advance(31)
    given = await dose(client, auth, session["id"])
    assert given.json()["flags"] == ["no_recent_bp"]

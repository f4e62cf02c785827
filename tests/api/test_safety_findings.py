"""The clinical review's findings of #13 that the other REST tests do not replay:
whole-mmHg judging (finding 10), requirements that apply forward (finding 11) and the
`low` category (finding 14)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.conftest import Ward
from tests.api.test_dosing_gate import DOSE, Auth
from tests.api.test_sessions import reading, start
from tests.clock import FakeClock
from vitalsd.domain import Role


async def alerts_of(client: httpx.AsyncClient, auth: Auth, session_id: int) -> list[Any]:
    response = await client.get(f"/api/alerts?session_id={session_id}", headers=auth[Role.NURSE])
    assert response.status_code == 200, response.text
    body = response.json()
    return list(body["items"] if isinstance(body, dict) else body)


async def test_finding_10_a_baseline_shown_as_160_100_is_judged_a_dosing_hold(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clock: FakeClock
) -> None:
    """21.3/13.3 kPa is 159.76/99.76 mmHg: shown 160/100, so a hold, not 'elevated'."""
    session = await start(client, auth, ward)
    for _ in range(2):
        stored = await reading(client, auth, session["id"], 159.76, 99.76)
        assert stored.status_code == 201, stored.text
        clock.advance(2)
    kinds = {(a["kind"], a["state"]) for a in await alerts_of(client, auth, session["id"])}
    assert ("dosing_hold", "active") in kinds
    assert not {k for k, _ in kinds} & {"elevated_baseline"}
    refused = await client.post(
        f"/api/sessions/{session['id']}/doses", json=DOSE, headers=auth[Role.CLINICIAN]
    )
    assert refused.status_code == 409, refused.text


async def test_finding_14_a_hypotensive_reading_is_category_low(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    session = await start(client, auth, ward)
    stored = await reading(client, auth, session["id"], 80, 50)
    assert stored.status_code == 201, stored.text
    assert stored.json()["category"] == "low"
    kinds = {a["kind"] for a in await alerts_of(client, auth, session["id"])}
    assert "hypotension" in kinds


async def test_finding_11_a_later_dose_increase_does_not_make_the_first_check_overdue(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clock: FakeClock
) -> None:
    """Course session 5, normal baseline: no post-dose check for the first dose. A second
    dose marked as an increase 40 minutes later requires its own check, and the first
    dose's (whose window closed at 30) is waived, never overdue with an alert."""
    session = await start(client, auth, ward, course_session=5)
    sid = session["id"]
    assert (await reading(client, auth, sid, 122, 78)).status_code == 201
    clock.advance(1)
    first = await client.post(f"/api/sessions/{sid}/doses", json=DOSE, headers=auth[Role.CLINICIAN])
    assert first.status_code == 201, first.text
    clock.advance(35)
    assert (await reading(client, auth, sid, 124, 80)).status_code == 201
    clock.advance(5)
    second = await client.post(
        f"/api/sessions/{sid}/doses",
        json=DOSE | {"increase": True},
        headers=auth[Role.CLINICIAN],
    )
    assert second.status_code == 201, second.text
    checks = (await client.get(f"/api/sessions/{sid}/checks", headers=auth[Role.NURSE])).json()
    items = checks["items"] if isinstance(checks, dict) else checks
    post_dose = sorted(
        (c for c in items if c["kind"] == "post_dose"), key=lambda c: c["window_start"]
    )
    assert [c["state"] for c in post_dose] == ["waived", "pending"]
    assert not [a for a in await alerts_of(client, auth, sid) if a["kind"] == "check_overdue"]

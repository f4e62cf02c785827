"""GET /api/alerts/history (issue #14): the alarm history from the server, filtered by
chair, patient, priority and time range, each alert with who did what to it and when;
bad filters are refused with a JSON 4xx."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.api.conftest import Ward
from tests.api.test_sessions import reading, start
from tests.clock import FakeClock
from vitalsd.domain import Role

Auth = dict[Role, dict[str, str]]


async def history(client: httpx.AsyncClient, auth: Auth, **params: Any) -> dict[str, Any]:
    response = await client.get("/api/alerts/history", params=params, headers=auth[Role.NURSE])
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def severe_then_hypotension(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clock: FakeClock
) -> dict[str, Any]:
    session = await start(client, auth, ward)
    await reading(client, auth, session["id"], 188, 112)  # high: severe hypertension
    clock.advance(seconds=60)
    await reading(client, auth, session["id"], 84, 52)  # medium: hypotension
    return session


async def test_history_shows_who_acknowledged_and_snoozed_and_when(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clock: FakeClock
) -> None:
    await severe_then_hypotension(client, auth, ward, clock)
    page = await history(client, auth)
    by_kind = {a["kind"]: a for a in page["items"]}
    severe, low = by_kind["severe_hypertension"], by_kind["hypotension"]
    clock.advance(seconds=30)
    acked = await client.post(f"/api/alerts/{severe['id']}/acknowledge", headers=auth[Role.NURSE])
    assert acked.status_code == 200, acked.text

    page = await history(client, auth)
    [severe] = [a for a in page["items"] if a["id"] == severe["id"]]
    actions = [(t["action"], t["actor"]) for t in severe["transitions"]]
    assert actions[0][0] == "raised"
    assert ("acknowledged", "nurse") in actions
    [ack] = [t for t in severe["transitions"] if t["action"] == "acknowledged"]
    assert ack["at"] == clock.now.isoformat()
    assert severe["patient_id"] == ward.patient_id
    assert low["priority"] == "medium"
    assert page["next_before_id"] is None


async def test_history_filters_by_priority_chair_patient_and_time(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clock: FakeClock
) -> None:
    raised_from = clock.now
    await severe_then_hypotension(client, auth, ward, clock)

    high = await history(client, auth, priority="high")
    assert {a["priority"] for a in high["items"]} == {"high"}
    kinds = {a["kind"] for a in high["items"]}
    assert "severe_hypertension" in kinds and "hypotension" not in kinds
    assert (await history(client, auth, chair_id=ward.chair_id))["items"]
    assert (await history(client, auth, patient_id=ward.patient_id))["items"]
    late = (raised_from + timedelta(seconds=30)).isoformat()
    kinds = [a["kind"] for a in (await history(client, auth, **{"from": late}))["items"]]
    assert "severe_hypertension" not in kinds and "hypotension" in kinds
    early = [a["kind"] for a in (await history(client, auth, to=late))["items"]]
    assert "severe_hypertension" in early and "hypotension" not in early


async def test_history_pages_newest_first_with_a_cursor(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clock: FakeClock
) -> None:
    await severe_then_hypotension(client, auth, ward, clock)
    first = await history(client, auth, limit=1)
    assert len(first["items"]) == 1 and first["next_before_id"] == first["items"][0]["id"]
    second = await history(client, auth, limit=1, before_id=first["next_before_id"])
    assert second["items"][0]["id"] < first["items"][0]["id"]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"priority": "urgent"}, 422),
        ({"chair_id": 0}, 422),
        ({"limit": 201}, 422),
        ({"from": "yesterday"}, 422),
        ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, 422),
        ({"patient_id": 9999}, 404),
        ({"chair_id": 9999}, 404),
    ],
)
async def test_history_refuses_bad_filters_with_a_json_error(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, params: dict[str, Any], status: int
) -> None:
    response = await client.get("/api/alerts/history", params=params, headers=auth[Role.NURSE])
    assert response.status_code == status, response.text
    assert "detail" in response.json()


async def test_history_needs_a_sign_in(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/alerts/history")
    assert response.status_code == 401

"""A dosing session over REST: start, readings, doses, side effects, checks, close."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import T0, FakeClock, Ward
from vitalsd.domain import Role

Auth = dict[Role, dict[str, str]]


async def start(client: httpx.AsyncClient, auth: Auth, ward: Ward, **extra: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/sessions",
        json={"patient_id": ward.patient_id, "chair_id": ward.chair_id} | extra,
        headers=auth[Role.CLINICIAN],
    )
    assert response.status_code == 201, response.text
    session: dict[str, Any] = response.json()
    return session


async def reading(
    client: httpx.AsyncClient, auth: Auth, session_id: int, systolic: float, diastolic: float
) -> httpx.Response:
    return await client.post(
        f"/api/sessions/{session_id}/readings",
        json={"systolic": systolic, "diastolic": diastolic, "pulse_rate": 72},
        headers=auth[Role.NURSE],
    )


async def test_clinician_starts_a_session_that_wants_a_baseline(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    session = await start(client, auth, ward, protocol="ketamine-psychotherapy")
    assert session["phase"] == "checked_in"
    assert session["next_check"]["kind"] == "baseline"
    assert session["started_at"] == T0.isoformat()


async def test_session_started_in_the_past_keeps_its_start(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    session = await start(client, auth, ward, started_at="2026-01-05T09:45:00+01:00")
    assert session["started_at"] == "2026-01-05T08:45:00+00:00"


async def test_session_with_a_naive_start_time_is_422_naming_it(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    response = await client.post(
        "/api/sessions",
        json={
            "patient_id": ward.patient_id,
            "chair_id": ward.chair_id,
            "started_at": "2026-01-05T08:00:00",
        },
        headers=auth[Role.CLINICIAN],
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "started_at"]


async def test_session_with_an_unknown_protocol_is_422(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    response = await client.post(
        "/api/sessions",
        json={"patient_id": ward.patient_id, "chair_id": ward.chair_id, "protocol": "homebrew"},
        headers=auth[Role.CLINICIAN],
    )
    assert response.status_code == 422
    assert "homebrew" in response.json()["detail"][0]["msg"]


async def test_second_session_on_a_busy_chair_is_409(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    await start(client, auth, ward)
    response = await client.post(
        "/api/sessions",
        json={"patient_id": ward.patient_id, "chair_id": ward.chair_id},
        headers=auth[Role.CLINICIAN],
    )
    assert response.status_code == 409


async def test_session_for_an_unknown_patient_is_404(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    response = await client.post(
        "/api/sessions",
        json={"patient_id": 77, "chair_id": ward.chair_id},
        headers=auth[Role.CLINICIAN],
    )
    assert response.status_code == 404


async def test_nurse_records_a_manual_reading_with_its_category(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    session = await start(client, auth, ward)
    response = await reading(client, auth, session["id"], 128, 82)
    assert response.status_code == 201
    body = response.json()
    assert (body["systolic"], body["diastolic"], body["source"]) == (128.0, 82.0, "manual")
    assert body["category"] is not None
    assert body["recorded_by"] == "nurse"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("systolic", 0),
        ("systolic", 400),
        ("diastolic", -5),
        ("pulse_rate", 300),
        ("systolic", "high"),
    ],
)
async def test_manual_reading_out_of_range_is_422_naming_the_field(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, field: str, value: object
) -> None:
    session = await start(client, auth, ward)
    body = {"systolic": 120, "diastolic": 80, "pulse_rate": 70} | {field: value}
    response = await client.post(
        f"/api/sessions/{session['id']}/readings", json=body, headers=auth[Role.NURSE]
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]


async def test_manual_reading_in_the_future_is_422(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    session = await start(client, auth, ward)
    response = await client.post(
        f"/api/sessions/{session['id']}/readings",
        json={"systolic": 120, "diastolic": 80, "measured_at": "2026-01-05T10:00:00+00:00"},
        headers=auth[Role.NURSE],
    )
    assert response.status_code == 422
    assert "future" in response.json()["detail"][0]["msg"]


async def test_manual_reading_for_an_unknown_session_is_404(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    response = await client.post(
        "/api/sessions/41/readings",
        json={"systolic": 120, "diastolic": 80},
        headers=auth[Role.NURSE],
    )
    assert response.status_code == 404


async def test_dose_during_a_dosing_hold_is_409_until_overridden_with_a_reason(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    session = await start(client, auth, ward)
    await reading(client, auth, session["id"], 165, 102)
    dose = {"drug": "ketamine", "amount_mg": 35, "route": "IM"}
    url = f"/api/sessions/{session['id']}/doses"
    refused = await client.post(url, json=dose, headers=auth[Role.CLINICIAN])
    assert refused.status_code == 409
    assert "dosing hold" in refused.json()["detail"]
    given = await client.post(
        url,
        json=dose | {"override_reason": "repeat 150/95, discussed"},
        headers=auth[Role.CLINICIAN],
    )
    assert given.status_code == 201
    assert "hold_overridden" in given.json()["flags"]


async def test_dose_increase_is_recorded_as_stated(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    session = await start(client, auth, ward)
    await reading(client, auth, session["id"], 122, 78)
    response = await client.post(
        f"/api/sessions/{session['id']}/doses",
        json={"drug": "ketamine", "amount_mg": 50, "route": "IM", "increase": True},
        headers=auth[Role.CLINICIAN],
    )
    assert response.json()["increase"] is True
    doses = await client.get(f"/api/sessions/{session['id']}/doses", headers=auth[Role.NURSE])
    assert [d["amount_mg"] for d in doses.json()] == [50.0]


async def test_dose_with_an_unknown_route_is_422_naming_it(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    session = await start(client, auth, ward)
    response = await client.post(
        f"/api/sessions/{session['id']}/doses",
        json={"drug": "ketamine", "amount_mg": 50, "route": "rectal"},
        headers=auth[Role.CLINICIAN],
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "route"]


async def test_side_effect_by_name_or_number_is_logged(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    session = await start(client, auth, ward)
    url = f"/api/sessions/{session['id']}/side-effects"
    first = await client.post(
        url, json={"effect": "nausea", "severity": "moderate"}, headers=auth[Role.NURSE]
    )
    second = await client.post(
        url,
        json={"effect": "dissociation", "severity": 1, "note": "expected"},
        headers=auth[Role.NURSE],
    )
    assert (first.status_code, second.status_code) == (201, 201)
    logged = await client.get(url, headers=auth[Role.NURSE])
    assert [(e["effect"], e["severity"]) for e in logged.json()] == [
        ("nausea", 2),
        ("dissociation", 1),
    ]


async def test_unknown_side_effect_is_422(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    session = await start(client, auth, ward)
    response = await client.post(
        f"/api/sessions/{session['id']}/side-effects",
        json={"effect": "hiccups", "severity": 1},
        headers=auth[Role.NURSE],
    )
    assert response.status_code == 422


async def test_closing_without_the_close_check_is_409_then_a_reason_closes(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    session = await start(client, auth, ward)
    url = f"/api/sessions/{session['id']}/close"
    refused = await client.post(url, headers=auth[Role.CLINICIAN])
    assert refused.status_code == 409
    assert "close-of-session" in refused.json()["detail"]
    closed = await client.post(
        url, json={"reason": "patient left early"}, headers=auth[Role.CLINICIAN]
    )
    assert closed.json()["phase"] == "closed"
    assert closed.json()["close_reason"] == "patient left early"


async def test_closing_a_closed_session_is_409(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    session = await start(client, auth, ward)
    url = f"/api/sessions/{session['id']}/close"
    await client.post(url, json={"reason": "done"}, headers=auth[Role.CLINICIAN])
    assert (
        await client.post(url, json={"reason": "again"}, headers=auth[Role.CLINICIAN])
    ).status_code == 409


async def test_checks_list_kind_window_and_state(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    session = await start(client, auth, ward)
    checks = await client.get(f"/api/sessions/{session['id']}/checks", headers=auth[Role.NURSE])
    assert checks.status_code == 200
    first = checks.json()[0]
    assert {"id", "kind", "window_start", "window_end", "state"} <= set(first)
    assert (first["kind"], first["state"]) == ("baseline", "due")


async def test_clinician_waives_a_check_with_a_reason(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    session = await start(client, auth, ward)
    checks = await client.get(f"/api/sessions/{session['id']}/checks", headers=auth[Role.NURSE])
    check_id = checks.json()[0]["id"]
    waived = await client.post(
        f"/api/sessions/{session['id']}/checks/{check_id}/waive",
        json={"reason": "reading taken on the ward"},
        headers=auth[Role.CLINICIAN],
    )
    assert waived.json()["state"] == "waived"
    again = await client.post(
        f"/api/checks/{check_id}/waive", json={"reason": "twice"}, headers=auth[Role.CLINICIAN]
    )
    assert again.status_code == 409


async def test_waiving_a_check_of_another_session_is_404(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    session = await start(client, auth, ward)
    response = await client.post(
        f"/api/sessions/{session['id'] + 1}/checks/1/waive",
        json={"reason": "x"},
        headers=auth[Role.CLINICIAN],
    )
    assert response.status_code == 404


async def test_sessions_list_filters_open_ones(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    session = await start(client, auth, ward)
    listed = await client.get("/api/sessions?open=true", headers=auth[Role.NURSE])
    assert [s["id"] for s in listed.json()] == [session["id"]]
    fetched = await client.get(f"/api/sessions/{session['id']}", headers=auth[Role.NURSE])
    assert fetched.json()["id"] == session["id"]


async def test_readings_page_through_a_patients_history_in_a_time_range(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clock: FakeClock
) -> None:
    session = await start(client, auth, ward)
    for systolic in (120, 122, 124):
        clock.advance(minutes=5)
        await reading(client, auth, session["id"], systolic, 80)
    url = f"/api/patients/{ward.patient_id}/readings"
    first = await client.get(f"{url}?limit=2", headers=auth[Role.NURSE])
    assert [r["systolic"] for r in first.json()["items"]] == [120, 122]
    assert first.json()["next_offset"] == 2
    rest = await client.get(f"{url}?limit=2&offset=2", headers=auth[Role.NURSE])
    assert [r["systolic"] for r in rest.json()["items"]] == [124]
    assert rest.json()["next_offset"] is None
    window = await client.get(
        "/api/readings",
        params={
            "session_id": session["id"],
            "since": "2026-01-05T09:07:00+00:00",
            "until": "2026-01-05T09:12:00+00:00",
        },
        headers=auth[Role.NURSE],
    )
    assert [r["systolic"] for r in window.json()["items"]] == [122]


async def test_session_readings_and_one_reading_by_id(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    session = await start(client, auth, ward)
    created = (await reading(client, auth, session["id"], 130, 85)).json()
    chart = await client.get(f"/api/sessions/{session['id']}/readings", headers=auth[Role.NURSE])
    assert [r["id"] for r in chart.json()] == [created["id"]]
    one = await client.get(f"/api/readings/{created['id']}", headers=auth[Role.NURSE])
    assert one.json() == created


async def test_readings_with_a_naive_since_is_422(client: httpx.AsyncClient, auth: Auth) -> None:
    response = await client.get("/api/readings?since=2026-01-05T09:00:00", headers=auth[Role.NURSE])
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "since"]


async def test_id_beyond_the_database_range_is_422(client: httpx.AsyncClient, auth: Auth) -> None:
    response = await client.get(f"/api/sessions/{2**63}", headers=auth[Role.NURSE])
    assert response.status_code == 422

"""Issue #17, findings 1, 12 and 14 replayed: backdated and future times, implausible
dates of birth and doses, bounded charts, non-ISO times, invisible characters in names,
the audit trail of manual readings and side effects, the audit cursor, and 405s."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from api.ws import StreamRequestError, parse_since
from tests.api.conftest import FakeClock, Ward
from tests.api.test_sessions import reading, start
from vitalsd.domain import Role
from vitalsd.exports.record import PatientRecord, SessionRecord, SideEffectRecord
from vitalsd.exports.timeline import timeline_svg
from vitalsd.timebounds import MAX_CHART_SPAN

Auth = dict[Role, dict[str, str]]


async def closed_session(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clock: FakeClock
) -> dict[str, Any]:
    session = await start(client, auth, ward)
    clock.advance(minutes=5)
    assert (await reading(client, auth, session["id"], 120, 80)).status_code == 201
    clock.advance(minutes=1)
    closed = await client.post(
        f"/api/sessions/{session['id']}/close", json={}, headers=auth[Role.CLINICIAN]
    )
    assert closed.status_code == 200, closed.text
    clock.advance(minutes=10)
    return closed.json()


async def test_a_side_effect_dated_1900_on_a_closed_session_is_refused(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clock: FakeClock
) -> None:
    session = await closed_session(client, auth, ward, clock)
    response = await client.post(
        f"/api/sessions/{session['id']}/side-effects",
        json={"effect": "nausea", "severity": 1, "observed_at": "1900-01-01T00:00:00+00:00"},
        headers=auth[Role.NURSE],
    )
    assert response.status_code == 422
    assert "before the session started" in response.text


async def test_a_side_effect_after_the_close_is_409_but_one_during_the_session_is_kept(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clock: FakeClock
) -> None:
    session = await closed_session(client, auth, ward, clock)
    url = f"/api/sessions/{session['id']}/side-effects"
    late = await client.post(
        url, json={"effect": "nausea", "severity": 1}, headers=auth[Role.NURSE]
    )
    assert late.status_code == 409
    assert "closed at" in late.json()["detail"]
    during = await client.post(
        url,
        json={"effect": "nausea", "severity": 1, "observed_at": session["started_at"]},
        headers=auth[Role.NURSE],
    )
    assert during.status_code == 201


async def test_a_side_effect_is_audited_with_who_and_when(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    session = await start(client, auth, ward)
    created = await client.post(
        f"/api/sessions/{session['id']}/side-effects",
        json={"effect": "dizziness", "severity": 2},
        headers=auth[Role.NURSE],
    )
    audit = await client.get(
        "/api/audit", params={"session_id": session["id"]}, headers=auth[Role.ADMIN]
    )
    entries = [a for a in audit.json() if a["action"] == "side_effect"]
    assert [e["actor"] for e in entries] == ["nurse"]
    assert f"side effect {created.json()['id']}" in entries[0]["note"]


async def test_a_manual_reading_is_audited(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    session = await start(client, auth, ward)
    created = await reading(client, auth, session["id"], 128, 84)
    audit = await client.get("/api/audit", params={"entity": "reading"}, headers=auth[Role.ADMIN])
    entries = [a for a in audit.json() if a["action"] == "manual_reading"]
    assert [(e["actor"], e["entity_id"]) for e in entries] == [("nurse", created.json()["id"])]
    assert "128/84" in entries[0]["note"]


@pytest.mark.parametrize("started_at", ["0001-01-02T00:00:00+00:00", "1900-01-01T00:00:00Z"])
async def test_a_session_started_in_year_1_or_1900_is_refused(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, started_at: str
) -> None:
    response = await client.post(
        "/api/sessions",
        json={"patient_id": ward.patient_id, "chair_id": ward.chair_id, "started_at": started_at},
        headers=auth[Role.CLINICIAN],
    )
    assert response.status_code == 422
    assert "hours ago" in response.text


async def test_a_session_entered_an_hour_late_is_still_charted_from_its_start(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clock: FakeClock
) -> None:
    earlier = (clock() - timedelta(hours=1)).isoformat()
    session = await start(client, auth, ward, started_at=earlier)
    assert datetime.fromisoformat(session["started_at"]) == clock() - timedelta(hours=1)


@pytest.mark.parametrize("born", ["0001-01-01", "1800-06-01", "2999-01-01"])
async def test_an_implausible_date_of_birth_is_refused(
    client: httpx.AsyncClient, auth: Auth, born: str
) -> None:
    response = await client.post(
        "/api/patients",
        json={"identifier": "MRN-9", "display_name": "Old Timer", "date_of_birth": born},
        headers=auth[Role.CLINICIAN],
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("drug", "amount", "route", "why"),
    [
        ("ketamine", 1e-300, "IM", "outside"),
        ("ketamine", 5_000, "IV", "outside"),
        ("esketamine", 56, "IV", "not given IV"),
        ("esketamine", 140, "intranasal", "outside"),
    ],
)
async def test_an_implausible_dose_is_refused_by_the_protocols_limits(
    client: httpx.AsyncClient,
    auth: Auth,
    ward: Ward,
    drug: str,
    amount: float,
    route: str,
    why: str,
) -> None:
    session = await start(client, auth, ward)
    response = await client.post(
        f"/api/sessions/{session['id']}/doses",
        json={"drug": drug, "amount_mg": amount, "route": route},
        headers=auth[Role.CLINICIAN],
    )
    assert response.status_code == 422
    assert why in response.text


async def test_a_dose_given_before_the_session_started_is_refused(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    session = await start(client, auth, ward)
    response = await client.post(
        f"/api/sessions/{session['id']}/doses",
        json={
            "drug": "ketamine",
            "amount_mg": 50,
            "route": "IM",
            "given_at": "2000-01-01T00:00:00+00:00",
        },
        headers=auth[Role.CLINICIAN],
    )
    assert response.status_code == 422


def test_a_chart_of_a_session_holding_year_1_data_stays_small() -> None:
    """Data stored before validation (a session started in year 1) draws the session's
    last two days at most: a few kilobytes, not 98 MB."""
    now = datetime(2026, 1, 5, 12, tzinfo=UTC)
    record = SessionRecord(
        id=1,
        protocol="ketamine-psychotherapy",
        started_at=datetime(1, 1, 2, tzinfo=UTC),
        patient=PatientRecord(id=1),
        closed_at=now,
        side_effects=(
            SideEffectRecord(1, "nausea", 1, datetime(1900, 1, 1, tzinfo=UTC)),
            SideEffectRecord(2, "nausea", 2, now - timedelta(hours=1)),
        ),
    )
    svg = timeline_svg(record, now=now, tz=UTC)
    assert len(svg) < 20_000
    assert 'data-side-effect-id="2"' in svg
    assert 'data-side-effect-id="1"' not in svg
    assert MAX_CHART_SPAN == timedelta(hours=48)


@pytest.mark.parametrize("until", ["0.5", "1700000000", "２０２６-01-05T09:00:00+00:00"])
async def test_a_time_that_is_not_iso_8601_text_is_refused(
    client: httpx.AsyncClient, auth: Auth, until: str
) -> None:
    response = await client.get("/api/readings", params={"until": until}, headers=auth[Role.NURSE])
    assert response.status_code == 422


@pytest.mark.parametrize("since", ["١٢", "1_000", "+5", " 7"])
def test_a_stream_since_in_other_digits_is_refused(since: str) -> None:
    with pytest.raises(StreamRequestError):
        parse_since(since)


@pytest.mark.parametrize("name", ["Alex\u202eeoD", "Al\u200bex", "Alex\x1b[31m"])
async def test_a_name_with_invisible_or_direction_characters_is_refused(
    client: httpx.AsyncClient, auth: Auth, name: str
) -> None:
    response = await client.post(
        "/api/patients",
        json={"identifier": "MRN-7", "display_name": name, "date_of_birth": "1980-01-01"},
        headers=auth[Role.CLINICIAN],
    )
    assert response.status_code == 422
    assert "control or formatting" in response.text


async def test_a_name_in_another_script_is_kept(client: httpx.AsyncClient, auth: Auth) -> None:
    response = await client.post(
        "/api/patients",
        json={"identifier": "MRN-8", "display_name": "أليكس دو", "date_of_birth": "1980-01-01"},
        headers=auth[Role.CLINICIAN],
    )
    assert response.status_code == 201
    assert response.json()["display_name"] == "أليكس دو"
    assert date.fromisoformat(response.json()["date_of_birth"]) == date(1980, 1, 1)


async def test_the_audit_log_pages_with_a_cursor_past_any_limit(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    for _ in range(3):
        await client.post("/api/chairs", json={"name": f"C{_}"}, headers=auth[Role.ADMIN])
    seen: list[int] = []
    after = 0
    while True:
        page = await client.get(
            "/api/audit", params={"limit": 2, "after_id": after}, headers=auth[Role.ADMIN]
        )
        assert page.status_code == 200
        ids = [entry["id"] for entry in page.json()]
        if not ids:
            break
        seen += ids
        after = ids[-1]
    everything = await client.get("/api/audit", headers=auth[Role.ADMIN])
    assert seen == [entry["id"] for entry in everything.json()]
    assert len(seen) >= 5


@pytest.mark.parametrize(("method", "path"), [("PUT", "/api/patients"), ("OPTIONS", "/api/chairs")])
async def test_a_known_path_with_another_method_is_405_with_allow(
    client: httpx.AsyncClient, auth: Auth, method: str, path: str
) -> None:
    response = await client.request(method, path, headers=auth[Role.ADMIN])
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST"}

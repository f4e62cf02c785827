"""Issue #14's exports: times in the clinic's time zone with its offset (CSV, FHIR),
the REMS form as a printable page, and the clinic's readings of a date range as FHIR."""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle

from api.app import create_app
from tests.exports.conftest import (
    ADMIN,
    NURSE,
    SECRET,
    EsketamineSession,
    FakeClock,
    Template,
    bearer,
)
from vitalsd.auth import TokenIssuer
from vitalsd.clinic import Clinic
from vitalsd.settings import Settings
from vitalsd.store.engine import create_engine

NEW_YORK = ZoneInfo("America/New_York")
# The template's readings are on 2026-03-03 (UTC), when New York is at -05:00.
OFFSET = "-05:00"
WHOLE_DAY = {"since": "2026-03-03T00:00:00+00:00", "until": "2026-03-04T00:00:00+00:00"}


@pytest.fixture
async def zoned(template: Template, clock: FakeClock, tmp_path: Path) -> AsyncIterator[Clinic]:
    """The template clinic, in New York."""
    copy = tmp_path / "vitalsd.sqlite3"
    for suffix in ("", "-wal"):
        source = template.path.with_name(template.path.name + suffix)
        if source.exists():
            shutil.copyfile(source, copy.with_name(copy.name + suffix))
    clinic = Clinic(create_engine(f"sqlite+aiosqlite:///{copy}"), clock=clock, zone=NEW_YORK)
    try:
        yield clinic
    finally:
        await clinic.close()


@pytest.fixture
async def client(
    zoned: Clinic, clock: FakeClock, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        zoned,
        Settings(data_dir=tmp_path),
        tokens=TokenIssuer(SECRET),
        clock=clock,
        static_dir=tmp_path / "static",
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://vitalsd.test") as http:
        yield http


async def test_session_csv_times_carry_the_clinics_offset_under_worded_headers(
    client: httpx.AsyncClient, esketamine_session: EsketamineSession, clock: FakeClock
) -> None:
    response = await client.get(
        f"/api/sessions/{esketamine_session.id}/readings.csv", headers=bearer(NURSE, clock)
    )
    rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
    assert rows and all(row["Measured at"].endswith(OFFSET) for row in rows)
    assert datetime.fromisoformat(rows[0]["Measured at"]).utcoffset() is not None
    assert "Systolic (mmHg)" in rows[0]


async def test_session_fhir_instants_carry_the_clinics_offset(
    client: httpx.AsyncClient, esketamine_session: EsketamineSession, clock: FakeClock
) -> None:
    response = await client.get(
        f"/api/sessions/{esketamine_session.id}/fhir", headers=bearer(NURSE, clock)
    )
    bundle = response.json()
    Bundle.model_validate(bundle)  # still valid FHIR R4
    effective = [
        e["resource"]["effectiveDateTime"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Observation"
    ]
    assert effective and all(t.endswith(OFFSET) for t in effective)
    assert "attachment" in response.headers["content-disposition"]


async def test_clinic_fhir_range_holds_each_patient_once_and_the_readings(
    client: httpx.AsyncClient, esketamine_session: EsketamineSession, clock: FakeClock
) -> None:
    response = await client.get("/api/exports/fhir", params=WHOLE_DAY, headers=bearer(NURSE, clock))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle = response.json()
    Bundle.model_validate(bundle)
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds.count("Patient") == 1
    loinc = {
        c["code"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Observation"
        for c in e["resource"]["code"].get("coding", [])
    }
    assert {"85354-9", "8867-4"} <= loinc


async def test_clinic_fhir_range_outside_the_readings_is_an_empty_bundle(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    response = await client.get(
        "/api/exports/fhir",
        params={"since": "2020-01-01T00:00:00+00:00", "until": "2020-01-02T00:00:00+00:00"},
        headers=bearer(NURSE, clock),
    )
    assert response.status_code == 200
    assert response.json()["entry"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"since": "2026-03-04T00:00:00+00:00", "until": "2026-03-03T00:00:00+00:00"},
        {"since": "2024-01-01T00:00:00+00:00", "until": "2026-01-01T00:00:00+00:00"},
        {"since": "2026-03-03T00:00:00", "until": "2026-03-04T00:00:00+00:00"},
        {"since": "yesterday", "until": "2026-03-04T00:00:00+00:00"},
        {"until": "2026-03-04T00:00:00+00:00"},
    ],
    ids=["reversed", "over-a-year", "no-offset", "not-a-time", "missing"],
)
async def test_clinic_fhir_range_refuses_a_bad_range_with_422(
    client: httpx.AsyncClient, clock: FakeClock, params: dict[str, str]
) -> None:
    response = await client.get("/api/exports/fhir", params=params, headers=bearer(NURSE, clock))
    assert response.status_code == 422
    assert response.json()["detail"]


async def test_admin_exports_the_clinics_range(client: httpx.AsyncClient, clock: FakeClock) -> None:
    """Issue #14: the date-range export is for admins (who export no session's record)."""
    for route in ("/api/exports/fhir", "/api/exports/readings.csv"):
        response = await client.get(route, params=WHOLE_DAY, headers=bearer(ADMIN, clock))
        assert response.status_code == 200, (route, response.text)
    report = await client.get("/api/sessions/1/report", headers=bearer(ADMIN, clock))
    assert report.status_code == 403


async def test_rems_form_page_shows_the_forms_fields_in_words(
    client: httpx.AsyncClient, esketamine_session: EsketamineSession, clock: FakeClock
) -> None:
    response = await client.get(
        f"/api/sessions/{esketamine_session.id}/rems.html", headers=bearer(NURSE, clock)
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    # Its inline stylesheet may apply (as the report's), and no script may run.
    policy = response.headers["content-security-policy"]
    assert "style-src 'unsafe-inline'" in policy and "default-src 'none'" in policy
    page = response.text
    for field in (
        "REMS patient monitoring form",
        "Blood pressure prior to administration",
        "About 40 minutes post-administration",
        "Prior to treatment session completion",
        "Vital signs acceptable prior to administration",
        "Total monitoring time",
    ):
        assert field in page
    assert "on_time" not in page
    assert "-0500" in page  # the clinic's time, with its offset


async def test_rems_form_page_of_an_unknown_session_is_404(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    response = await client.get("/api/sessions/4242/rems.html", headers=bearer(NURSE, clock))
    assert response.status_code == 404
    assert response.json() == {"detail": "no session with id 4242"}

"""The export routes on a real clinic service and database, through the app factory."""

from __future__ import annotations

import csv
import io
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle
from pypdf import PdfReader

from tests.exports.conftest import (
    ADMIN,
    CLINICIAN,
    NURSE,
    T0,
    EsketamineSession,
    FakeClock,
    bearer,
)
from vitalsd.clinic import Actor, Clinic

ROUTES = (
    "/api/sessions/{id}/fhir",
    "/api/sessions/{id}/readings.csv",
    "/api/sessions/{id}/report",
    "/api/sessions/{id}/report.pdf",
    "/api/sessions/{id}/rems",
)


def _blood_pressures(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Observation"
        and any(c["code"] == "85354-9" for c in e["resource"]["code"].get("coding", []))
    ]


def _value(observation: dict[str, Any], loinc: str) -> float:
    for component in observation["component"]:
        if any(c["code"] == loinc for c in component["code"]["coding"]):
            return float(component["valueQuantity"]["value"])
    raise AssertionError(f"no component {loinc}")


async def _statuses(
    client: httpx.AsyncClient, session_id: int, headers: dict[str, str] | None = None
) -> dict[str, int]:
    return {
        route: (await client.get(route.format(id=session_id), headers=headers)).status_code
        for route in ROUTES
    }


async def test_every_export_without_a_token_is_refused(
    client: httpx.AsyncClient, esketamine_session: EsketamineSession
) -> None:
    assert await _statuses(client, esketamine_session.id) == dict.fromkeys(ROUTES, 401)


async def test_admin_may_not_export_clinical_records(
    client: httpx.AsyncClient, esketamine_session: EsketamineSession, clock: FakeClock
) -> None:
    statuses = await _statuses(client, esketamine_session.id, bearer(ADMIN, clock))
    assert statuses == dict.fromkeys(ROUTES, 403)


@pytest.mark.parametrize("actor", [NURSE, CLINICIAN], ids=["nurse", "clinician"])
async def test_nurses_and_clinicians_may_export(
    actor: Actor, client: httpx.AsyncClient, esketamine_session: EsketamineSession, clock: FakeClock
) -> None:
    statuses = await _statuses(client, esketamine_session.id, bearer(actor, clock))
    assert statuses == dict.fromkeys(ROUTES, 200)


async def test_export_of_an_unknown_session_is_not_found(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    assert await _statuses(client, 999, bearer(NURSE, clock)) == dict.fromkeys(ROUTES, 404)


async def test_fhir_bundle_validates_and_carries_the_stored_readings(
    client: httpx.AsyncClient,
    esketamine_session: EsketamineSession,
    clinic: Clinic,
    clock: FakeClock,
) -> None:
    response = await client.get(
        f"/api/sessions/{esketamine_session.id}/fhir", headers=bearer(CLINICIAN, clock)
    )
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle = response.json()
    Bundle.model_validate(bundle)
    stored = await clinic.list_readings(session_id=esketamine_session.id)
    exported = _blood_pressures(bundle)
    assert [(_value(o, "8480-6"), _value(o, "8462-4")) for o in exported] == [
        (r.systolic, r.diastolic) for r in stored
    ]


async def test_kpa_cuff_reading_is_exported_in_mmhg(
    client: httpx.AsyncClient, esketamine_session: EsketamineSession, clock: FakeClock
) -> None:
    response = await client.get(
        f"/api/sessions/{esketamine_session.id}/fhir", headers=bearer(NURSE, clock)
    )
    baseline = _blood_pressures(response.json())[0]
    # The cuff sent 16.0/10.6 kPa (GSS 3.31: units flag set).
    assert abs(_value(baseline, "8480-6") - 120.0) < 0.1
    assert abs(_value(baseline, "8462-4") - 79.5) < 0.1
    assert {c["valueQuantity"]["code"] for c in baseline["component"]} == {"mm[Hg]"}


async def test_fhir_device_carries_the_cuffs_device_information(
    client: httpx.AsyncClient, esketamine_session: EsketamineSession, clock: FakeClock
) -> None:
    response = await client.get(
        f"/api/sessions/{esketamine_session.id}/fhir", headers=bearer(NURSE, clock)
    )
    (device,) = [
        e["resource"] for e in response.json()["entry"] if e["resource"]["resourceType"] == "Device"
    ]
    assert (device["manufacturer"], device["modelNumber"], device["serialNumber"]) == (
        "OMRON HEALTHCARE",
        "HEM-7530T",
        "SN-0001",
    )


async def test_session_csv_has_a_row_per_reading(
    client: httpx.AsyncClient,
    esketamine_session: EsketamineSession,
    clinic: Clinic,
    clock: FakeClock,
) -> None:
    response = await client.get(
        f"/api/sessions/{esketamine_session.id}/readings.csv", headers=bearer(NURSE, clock)
    )
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
    stored = await clinic.list_readings(session_id=esketamine_session.id)
    assert [int(row["Reading"]) for row in rows] == [r.id for r in stored]
    assert [float(row["Systolic (mmHg)"]) for row in rows] == [r.systolic for r in stored]


async def test_range_csv_holds_only_readings_in_the_range(
    client: httpx.AsyncClient, esketamine_session: EsketamineSession, clock: FakeClock
) -> None:
    # Readings at T0+5 (baseline), T0+50 (post-dose), T0+135 (manual).
    response = await client.get(
        "/api/exports/readings.csv",
        params={"since": "2026-03-03T09:30:00+00:00", "until": "2026-03-03T10:00:00+00:00"},
        headers=bearer(NURSE, clock),
    )
    rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
    assert [row["Measured at"] for row in rows] == ["2026-03-03T09:50:00+00:00"]


async def test_range_csv_filters_by_patient(
    client: httpx.AsyncClient, esketamine_session: EsketamineSession, clock: FakeClock
) -> None:
    response = await client.get(
        "/api/exports/readings.csv",
        params={
            "since": T0.isoformat(),
            "until": "2026-03-04T09:00:00+00:00",
            "patient_id": esketamine_session.patient_id + 1,
        },
        headers=bearer(NURSE, clock),
    )
    assert list(csv.DictReader(io.StringIO(response.text))) == []


@pytest.mark.parametrize(
    ("since", "until"),
    [
        ("2026-03-03T10:00:00+00:00", "2026-03-03T09:00:00+00:00"),
        ("2025-01-01T00:00:00+00:00", "2026-03-03T09:00:00+00:00"),
        ("2026-03-03T09:00:00", "2026-03-03T10:00:00+00:00"),
    ],
    ids=["until-before-since", "over-a-year", "no-offset"],
)
async def test_range_csv_refuses_a_bad_range(
    since: str, until: str, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    response = await client.get(
        "/api/exports/readings.csv",
        params={"since": since, "until": until},
        headers=bearer(NURSE, clock),
    )
    assert response.status_code == 422


async def test_report_is_html_in_the_requested_time_zone(
    client: httpx.AsyncClient, esketamine_session: EsketamineSession, clock: FakeClock
) -> None:
    response = await client.get(
        f"/api/sessions/{esketamine_session.id}/report",
        params={"tz": "Europe/Berlin"},
        headers=bearer(NURSE, clock),
    )
    assert response.headers["content-type"].startswith("text/html")
    assert "2026-03-03 10:05:00 +0100" in response.text  # the baseline, 09:05 UTC
    assert "<svg" in response.text


async def test_report_as_pdf_is_an_attachment_with_the_readings(
    client: httpx.AsyncClient, esketamine_session: EsketamineSession, clock: FakeClock
) -> None:
    response = await client.get(
        f"/api/sessions/{esketamine_session.id}/report.pdf",
        params={"tz": "Europe/Berlin"},
        headers=bearer(NURSE, clock),
    )
    assert response.headers["content-type"] == "application/pdf"
    assert "attachment" in response.headers["content-disposition"]
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages)
    assert "124 mmHg" in text  # the manual reading before completion


async def test_report_with_an_unknown_time_zone_is_refused(
    client: httpx.AsyncClient, esketamine_session: EsketamineSession, clock: FakeClock
) -> None:
    response = await client.get(
        f"/api/sessions/{esketamine_session.id}/report",
        params={"tz": "Mars/Olympus_Mons"},
        headers=bearer(NURSE, clock),
    )
    assert response.status_code == 422
    assert "time zone" in response.text


async def test_rems_form_of_the_stored_session(
    client: httpx.AsyncClient, esketamine_session: EsketamineSession, clock: FakeClock
) -> None:
    response = await client.get(
        f"/api/sessions/{esketamine_session.id}/rems", headers=bearer(CLINICIAN, clock)
    )
    form = response.json()
    assert form["bp_before_dosing"]["timing"] == "on_time"
    assert abs(form["bp_before_dosing"]["systolic"] - 120.0) < 0.1
    assert form["bp_post_dose"]["minutes_after_first_dose"] == 40
    assert (form["bp_before_completion"]["systolic"], form["bp_before_completion"]["timing"]) == (
        124,
        "on_time",
    )
    assert form["total_monitoring_minutes"] == 130
    assert form["minimum_monitoring_met"] is True
    assert form["bp_before_dosing"]["measured_at"] == "2026-03-03T09:05:00+00:00"


async def test_rems_form_of_a_ketamine_session_is_a_conflict(
    client: httpx.AsyncClient, clinic: Clinic, clock: FakeClock
) -> None:
    from datetime import date

    patient = await clinic.create_patient("MRN-9", "Bo", date(1990, 1, 1), by=NURSE)
    chair = await clinic.create_chair("Chair 9", by=NURSE)
    started = await clinic.start_session(patient.id, chair.id, by=CLINICIAN)
    response = await client.get(
        f"/api/sessions/{started.id}/rems", headers=bearer(CLINICIAN, clock)
    )
    assert response.status_code == 409
    assert "esketamine" in response.json()["detail"]


async def test_low_finding_the_report_shows_the_clinics_time_zone_by_default(
    client: httpx.AsyncClient,
    clinic: Clinic,
    esketamine_session: EsketamineSession,
    clock: FakeClock,
) -> None:
    """Issue #13, low finding: every time a person reads is in the clinic's time zone
    (setting `timezone`, here Europe/Berlin) when the reader asks for none."""
    clinic.zone = ZoneInfo("Europe/Berlin")
    response = await client.get(
        f"/api/sessions/{esketamine_session.id}/report", headers=bearer(NURSE, clock)
    )
    assert "2026-03-03 10:05:00 +0100" in response.text  # the baseline, 09:05 UTC

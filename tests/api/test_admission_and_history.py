"""Admission, patient search, history and protocols over REST (issue #14)."""

from __future__ import annotations

from datetime import date

import httpx

from tests.api.conftest import ADMIN, CUFF, Ward
from vitalsd.clinic import Actor, Clinic
from vitalsd.domain import Drug, Role, Route

Auth = dict[Role, dict[str, str]]
CLINICIAN = Actor("clinician", Role.CLINICIAN)
OTHER_CUFF = "C0:FF:EE:00:00:02"


async def _second_chair_in_session(clinic: Clinic) -> tuple[int, int]:
    """Chair 2 with the ward's cuff moved to it and a patient in session there."""
    patient = await clinic.create_patient("MRN-2", "Blair Roe", date(1975, 1, 2), by=ADMIN)
    chair = await clinic.create_chair("Chair 2", by=ADMIN)
    await clinic.assign_cuff(chair.id, CUFF, by=ADMIN)
    session = await clinic.start_session(patient.id, chair.id, by=CLINICIAN)
    return chair.id, session.id


async def test_protocols_list_the_clinic_default_first(
    client: httpx.AsyncClient, auth: Auth, clinic: Clinic
) -> None:
    response = await client.get("/api/protocols", headers=auth[Role.NURSE])
    assert response.status_code == 200
    listed = response.json()
    assert listed[0]["name"] == clinic.default_protocol and listed[0]["default"] is True
    assert {p["name"] for p in listed} >= {"ketamine-psychotherapy", "esketamine-rems"}
    assert [p["name"] for p in listed if p["rems_monitoring_form"]] == ["esketamine-rems"]


async def test_patient_search_matches_identifier_or_name_in_any_case(
    client: httpx.AsyncClient, auth: Auth, clinic: Clinic
) -> None:
    await clinic.create_patient("MRN-100", "Alex Doe", date(1980, 6, 1), by=ADMIN)
    await clinic.create_patient("MRN-200", "Robin Smith", date(1981, 6, 1), by=ADMIN)
    await clinic.create_patient("X_9%", "Pat Lee", date(1982, 6, 1), by=ADMIN)
    await clinic.create_patient("MRN-300", "Élodie Márquez", date(1983, 6, 1), by=ADMIN)

    async def found(q: str) -> list[str]:
        answer = await client.get("/api/patients", params={"q": q}, headers=auth[Role.NURSE])
        assert answer.status_code == 200
        return [p["identifier"] for p in answer.json()]

    assert await found("mrn-2") == ["MRN-200"]
    assert await found("SMITH") == ["MRN-200"]
    assert await found("doe") == ["MRN-100"]
    assert await found("%") == ["X_9%"]  # a LIKE wildcard is a plain character
    assert await found("ÉLODIE") == ["MRN-300"]  # beyond ASCII too
    assert await found("márq") == ["MRN-300"]
    assert await found("nobody") == []
    assert len(await found("")) == 4


async def test_patient_search_too_long_is_422(client: httpx.AsyncClient, auth: Auth) -> None:
    response = await client.get("/api/patients", params={"q": "x" * 129}, headers=auth[Role.NURSE])
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "q"]


async def test_admission_starts_the_session_on_the_chairs_cuff(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    response = await client.post(
        "/api/admissions",
        json={"patient_id": ward.patient_id, "chair_id": ward.chair_id},
        headers=auth[Role.CLINICIAN],
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["patient_id"], body["chair_id"], body["course_session"]) == (
        ward.patient_id,
        ward.chair_id,
        1,
    )
    assert body["protocol"] == "ketamine-psychotherapy"


async def test_admission_counts_the_course_session_from_the_patients_history(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clinic: Clinic
) -> None:
    first = await clinic.start_session(ward.patient_id, ward.chair_id, by=CLINICIAN)
    await clinic.close_session(first.id, by=CLINICIAN, reason="test: short session")
    response = await client.post(
        "/api/admissions",
        json={
            "patient_id": ward.patient_id,
            "chair_id": ward.chair_id,
            "protocol": "esketamine-rems",
        },
        headers=auth[Role.CLINICIAN],
    )
    assert response.status_code == 201
    assert (response.json()["course_session"], response.json()["protocol"]) == (
        2,
        "esketamine-rems",
    )


async def test_admission_taking_a_cuff_from_a_chair_in_session_needs_confirm_and_reason(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clinic: Clinic
) -> None:
    other_chair, _ = await _second_chair_in_session(clinic)
    wanted = {"patient_id": ward.patient_id, "chair_id": ward.chair_id, "cuff_address": CUFF}

    refused = await client.post("/api/admissions", json=wanted, headers=auth[Role.CLINICIAN])
    assert refused.status_code == 409
    assert "confirm" in refused.json()["detail"]
    chairs = {c.id: c for c in await clinic.list_chairs()}
    assert chairs[other_chair].cuff_address == CUFF  # nothing moved
    assert chairs[ward.chair_id].session_id is None  # nothing started

    moved = await client.post(
        "/api/admissions",
        json=wanted | {"confirm": True, "reason": "chair 2's cuff has a flat battery"},
        headers=auth[Role.CLINICIAN],
    )
    assert moved.status_code == 201
    chairs = {c.id: c for c in await clinic.list_chairs()}
    assert chairs[ward.chair_id].cuff_address == CUFF
    assert chairs[other_chair].cuff_address is None


async def test_admission_to_a_chair_in_session_is_409_and_moves_no_cuff(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clinic: Clinic
) -> None:
    other_chair, _ = await _second_chair_in_session(clinic)
    response = await client.post(
        "/api/admissions",
        json={
            "patient_id": ward.patient_id,
            "chair_id": other_chair,
            "cuff_address": OTHER_CUFF,
            "confirm": True,
            "reason": "x",
        },
        headers=auth[Role.CLINICIAN],
    )
    assert response.status_code == 409
    assert "open session" in response.json()["detail"]
    chairs = {c.id: c for c in await clinic.list_chairs()}
    assert chairs[other_chair].cuff_address == CUFF


async def test_admission_of_an_unknown_patient_is_404(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    response = await client.post(
        "/api/admissions",
        json={"patient_id": 999, "chair_id": ward.chair_id},
        headers=auth[Role.CLINICIAN],
    )
    assert response.status_code == 404
    assert response.json() == {"detail": "no patient with id 999"}


async def test_admission_under_an_unknown_protocol_is_an_error_naming_the_choices(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    response = await client.post(
        "/api/admissions",
        json={"patient_id": ward.patient_id, "chair_id": ward.chair_id, "protocol": "nope"},
        headers=auth[Role.CLINICIAN],
    )
    assert response.status_code == 422
    assert "ketamine-psychotherapy" in response.json()["detail"][0]["msg"]


async def test_admission_with_a_bad_body_is_422(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    response = await client.post(
        "/api/admissions", json={"patient_id": "one"}, headers=auth[Role.CLINICIAN]
    )
    assert response.status_code == 422
    assert {tuple(e["loc"]) for e in response.json()["detail"]} >= {
        ("body", "patient_id"),
        ("body", "chair_id"),
    }


async def test_nurse_may_not_admit(client: httpx.AsyncClient, auth: Auth, ward: Ward) -> None:
    response = await client.post(
        "/api/admissions",
        json={"patient_id": ward.patient_id, "chair_id": ward.chair_id},
        headers=auth[Role.NURSE],
    )
    assert response.status_code == 403


async def test_history_lists_each_session_with_doses_peak_alerts_and_side_effects(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clinic: Clinic
) -> None:
    first = await clinic.start_session(ward.patient_id, ward.chair_id, by=CLINICIAN)
    await clinic.record_manual_reading(
        first.id, systolic=128.0, diastolic=82.0, pulse_rate=70.0, by=CLINICIAN
    )
    await clinic.record_manual_reading(
        first.id, systolic=186.0, diastolic=104.0, pulse_rate=90.0, by=CLINICIAN
    )
    await clinic.record_dose(
        first.id,
        drug=Drug.KETAMINE,
        amount_mg=35.0,
        route=Route.IM,
        by=CLINICIAN,
        override_reason="test: dose despite the reading",
    )
    await clinic.record_side_effect(first.id, effect="nausea", severity=2, by=CLINICIAN)
    await clinic.close_session(first.id, by=CLINICIAN, reason="test: done")
    second = await clinic.start_session(ward.patient_id, ward.chair_id, by=CLINICIAN)

    response = await client.get(
        f"/api/patients/{ward.patient_id}/history", headers=auth[Role.NURSE]
    )
    assert response.status_code == 200
    body = response.json()
    assert body["patient"]["identifier"] == "MRN-1"
    newest, oldest = body["sessions"]
    assert (newest["id"], newest["closed_at"], newest["course_session"]) == (second.id, None, 2)
    assert oldest["id"] == first.id and oldest["closed_by"] == "clinician"
    assert [(d["drug"], d["amount_mg"]) for d in oldest["doses"]] == [("ketamine", 35.0)]
    assert (oldest["peak"]["systolic"], oldest["peak"]["diastolic"]) == (186.0, 104.0)
    assert "severe_hypertension" in {a["kind"] for a in oldest["alerts"]}
    assert [(e["effect"], e["severity"]) for e in oldest["side_effects"]] == [("nausea", 2)]


async def test_history_of_an_unknown_patient_is_404(client: httpx.AsyncClient, auth: Auth) -> None:
    response = await client.get("/api/patients/4242/history", headers=auth[Role.NURSE])
    assert response.status_code == 404
    assert response.json() == {"detail": "no patient with id 4242"}


async def test_history_of_a_bad_id_is_422(client: httpx.AsyncClient, auth: Auth) -> None:
    response = await client.get("/api/patients/0/history", headers=auth[Role.NURSE])
    assert response.status_code == 422

"""Patients, chairs and cuffs over REST."""

from __future__ import annotations

import httpx

from tests.api.conftest import CUFF, Ward
from vitalsd.domain import Role

Auth = dict[Role, dict[str, str]]
PATIENT = {"identifier": "MRN-9", "display_name": "Sam Roe", "date_of_birth": "1970-02-03"}


async def test_clinician_registers_a_patient(client: httpx.AsyncClient, auth: Auth) -> None:
    created = await client.post("/api/patients", json=PATIENT, headers=auth[Role.CLINICIAN])
    assert created.status_code == 201
    body = created.json()
    assert {k: body[k] for k in PATIENT} == PATIENT
    fetched = await client.get(f"/api/patients/{body['id']}", headers=auth[Role.NURSE])
    assert fetched.json() == body


async def test_patient_with_a_taken_identifier_is_409(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    await client.post("/api/patients", json=PATIENT, headers=auth[Role.CLINICIAN])
    again = await client.post("/api/patients", json=PATIENT, headers=auth[Role.CLINICIAN])
    assert again.status_code == 409
    assert "MRN-9" in again.json()["detail"]


async def test_patient_born_in_the_future_is_422(client: httpx.AsyncClient, auth: Auth) -> None:
    body = PATIENT | {"date_of_birth": "2999-01-01"}
    response = await client.post("/api/patients", json=body, headers=auth[Role.CLINICIAN])
    assert response.status_code == 422


async def test_patient_with_a_blank_name_is_422_naming_the_field(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    body = PATIENT | {"display_name": "   "}
    response = await client.post("/api/patients", json=body, headers=auth[Role.CLINICIAN])
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "display_name"]


async def test_unknown_patient_is_404(client: httpx.AsyncClient, auth: Auth) -> None:
    response = await client.get("/api/patients/999", headers=auth[Role.NURSE])
    assert response.status_code == 404
    assert response.json() == {"detail": "no patient with id 999"}


async def test_patient_lists_and_sessions(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    patients = await client.get("/api/patients", headers=auth[Role.NURSE])
    assert [p["id"] for p in patients.json()] == [ward.patient_id]
    sessions = await client.get(
        f"/api/patients/{ward.patient_id}/sessions", headers=auth[Role.NURSE]
    )
    assert sessions.json() == []


async def test_admin_adds_a_chair_and_assigns_a_cuff(client: httpx.AsyncClient, auth: Auth) -> None:
    chair = await client.post("/api/chairs", json={"name": "Chair 7"}, headers=auth[Role.ADMIN])
    assert chair.status_code == 201
    chair_id = chair.json()["id"]
    assigned = await client.put(
        f"/api/chairs/{chair_id}/cuff", json={"cuff_address": CUFF}, headers=auth[Role.ADMIN]
    )
    assert assigned.json() == {
        "id": chair_id,
        "name": "Chair 7",
        "cuff_address": CUFF,
        "session_id": None,
    }
    devices = await client.get("/api/devices", headers=auth[Role.NURSE])
    assert [(d["address"], d["chair_id"]) for d in devices.json()] == [(CUFF, chair_id)]


async def test_unassigning_a_cuff_frees_the_chair(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    response = await client.delete(f"/api/chairs/{ward.chair_id}/cuff", headers=auth[Role.ADMIN])
    assert response.json()["cuff_address"] is None


async def test_assigning_from_the_cuffs_side_moves_it(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    other = await client.post("/api/chairs", json={"name": "Chair 2"}, headers=auth[Role.ADMIN])
    moved = await client.post(
        f"/api/devices/{CUFF}/assign",
        json={"chair_id": other.json()["id"]},
        headers=auth[Role.ADMIN],
    )
    assert moved.json()["cuff_address"] == CUFF
    first = await client.get(f"/api/chairs/{ward.chair_id}", headers=auth[Role.NURSE])
    assert first.json()["cuff_address"] is None


async def test_a_device_is_found_by_its_address(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    response = await client.get(f"/api/devices/{CUFF.lower()}", headers=auth[Role.NURSE])
    assert response.json()["address"] == CUFF
    missing = await client.get("/api/devices/00:00:00:00:00:00", headers=auth[Role.NURSE])
    assert missing.status_code == 404


async def test_chair_name_taken_is_409(client: httpx.AsyncClient, auth: Auth, ward: Ward) -> None:
    response = await client.post("/api/chairs", json={"name": "Chair 1"}, headers=auth[Role.ADMIN])
    assert response.status_code == 409


async def test_unknown_chair_is_404(client: httpx.AsyncClient, auth: Auth) -> None:
    assert (await client.get("/api/chairs/5", headers=auth[Role.NURSE])).status_code == 404
    response = await client.put(
        "/api/chairs/5/cuff", json={"cuff_address": CUFF}, headers=auth[Role.ADMIN]
    )
    assert response.status_code == 404


async def test_an_extra_field_is_422(client: httpx.AsyncClient, auth: Auth) -> None:
    response = await client.post(
        "/api/chairs", json={"name": "C", "colour": "red"}, headers=auth[Role.ADMIN]
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "colour"]

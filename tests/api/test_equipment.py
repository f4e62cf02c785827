"""Patients, chairs and cuffs over REST."""

from __future__ import annotations

import httpx

from devices.bps import BloodPressureMeasurement, PressureUnit
from tests.api.conftest import CUFF, Ward
from tests.clock import FakeClock
from vitalsd.clinic import Clinic
from vitalsd.cuff_readings import cuff_reading
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
        "retired_at": None,
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


# -- issue #13 finding 7: moving a cuff that a chair's open session relies on ------------

OTHER_CUFF = "C0:FF:EE:00:00:02"


async def chair_in_session(
    client: httpx.AsyncClient, auth: Auth, name: str, cuff: str, identifier: str
) -> tuple[int, int]:
    """A chair with its own cuff and an open session; returns (chair id, session id)."""
    chair = await client.post("/api/chairs", json={"name": name}, headers=auth[Role.ADMIN])
    chair_id = chair.json()["id"]
    await client.put(
        f"/api/chairs/{chair_id}/cuff", json={"cuff_address": cuff}, headers=auth[Role.ADMIN]
    )
    patient = await client.post(
        "/api/patients",
        json=PATIENT | {"identifier": identifier},
        headers=auth[Role.CLINICIAN],
    )
    session = await client.post(
        "/api/sessions",
        json={"patient_id": patient.json()["id"], "chair_id": chair_id},
        headers=auth[Role.CLINICIAN],
    )
    assert session.status_code == 201, session.text
    return chair_id, session.json()["id"]


async def test_finding_7_a_cuff_moved_onto_a_chair_in_session_with_its_own_cuff_needs_confirm(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    """Finding 7: the ward's cuff (its chair not in session) put on chair 2, whose open
    session is measured by another cuff: 409 with why; then with confirm and a reason,
    done and audited."""
    chair_id, session_id = await chair_in_session(client, auth, "Chair 2", OTHER_CUFF, "MRN-2")
    url = f"/api/chairs/{chair_id}/cuff"
    refused = await client.put(url, json={"cuff_address": CUFF}, headers=auth[Role.ADMIN])
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert "'Chair 2' has an open session measured by cuff " + OTHER_CUFF in detail
    assert '"confirm": true' in detail and '"reason"' in detail
    no_reason = await client.put(
        url, json={"cuff_address": CUFF, "confirm": True}, headers=auth[Role.ADMIN]
    )
    assert no_reason.status_code == 409
    unchanged = await client.get(f"/api/chairs/{chair_id}", headers=auth[Role.NURSE])
    assert unchanged.json()["cuff_address"] == OTHER_CUFF
    moved = await client.put(
        url,
        json={"cuff_address": CUFF, "confirm": True, "reason": "cuff 2 broke"},
        headers=auth[Role.ADMIN],
    )
    assert moved.status_code == 200
    assert moved.json()["cuff_address"] == CUFF
    audit = await client.get("/api/audit", params={"entity": "chair"}, headers=auth[Role.ADMIN])
    entry = next(a for a in audit.json() if a["entity_id"] == chair_id and a["to_state"] == CUFF)
    assert (entry["note"], entry["from_state"], entry["session_id"]) == (
        "cuff 2 broke",
        OTHER_CUFF,
        session_id,
    )


async def test_finding_7_a_cuff_taken_from_a_chair_in_session_needs_confirm(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    """Away from a chair with an open session: by moving it (from either side) or by
    unbinding it, 409 without confirm and a reason."""
    session = await client.post(
        "/api/sessions",
        json={"patient_id": ward.patient_id, "chair_id": ward.chair_id},
        headers=auth[Role.CLINICIAN],
    )
    assert session.status_code == 201
    other = await client.post("/api/chairs", json={"name": "Chair 2"}, headers=auth[Role.ADMIN])
    move = {"chair_id": other.json()["id"]}
    refused = await client.post(f"/api/devices/{CUFF}/assign", json=move, headers=auth[Role.ADMIN])
    assert refused.status_code == 409
    assert "'Chair 1', which has an open session" in refused.json()["detail"]
    unbind = f"/api/chairs/{ward.chair_id}/cuff"
    assert (await client.delete(unbind, headers=auth[Role.ADMIN])).status_code == 409
    still = await client.get(f"/api/chairs/{ward.chair_id}", headers=auth[Role.NURSE])
    assert still.json()["cuff_address"] == CUFF
    moved = await client.post(
        f"/api/devices/{CUFF}/assign",
        json=move | {"confirm": True, "reason": "patient moved to chair 2"},
        headers=auth[Role.ADMIN],
    )
    assert moved.status_code == 200
    assert moved.json()["cuff_address"] == CUFF
    first = await client.get(f"/api/chairs/{ward.chair_id}", headers=auth[Role.NURSE])
    assert first.json()["cuff_address"] is None


async def test_finding_7_a_reading_belongs_to_the_chair_its_cuff_was_on_when_it_was_measured(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clinic: Clinic, clock: FakeClock
) -> None:
    """Finding 7: after a confirmed move of the ward's cuff to chair 2 (in session with
    its own cuff), a record the cuff measured before the move and delivers after it goes
    to chair 1's patient; one measured after the move, to chair 2's."""
    first = await client.post(
        "/api/sessions",
        json={"patient_id": ward.patient_id, "chair_id": ward.chair_id},
        headers=auth[Role.CLINICIAN],
    )
    chair_id, second_id = await chair_in_session(client, auth, "Chair 2", OTHER_CUFF, "MRN-2")
    clock.advance(5)
    before_move = clock()
    clock.advance(1)
    moved = await client.put(
        f"/api/chairs/{chair_id}/cuff",
        json={"cuff_address": CUFF, "confirm": True, "reason": "patient 1 left the cuff"},
        headers=auth[Role.ADMIN],
    )
    assert moved.status_code == 200
    clock.advance(1)
    late = BloodPressureMeasurement(PressureUnit.MMHG, 131, 81, 98, pulse_rate=70)
    await clinic.ingest_cuff_measurement(CUFF, cuff_reading(late), before_move, bytes(late))
    after = BloodPressureMeasurement(PressureUnit.MMHG, 142, 88, 106, pulse_rate=75)
    await clinic.ingest_cuff_measurement(CUFF, cuff_reading(after), clock(), bytes(after))
    systolics = {}
    for session_id in (first.json()["id"], second_id):
        readings = await client.get(
            f"/api/sessions/{session_id}/readings", headers=auth[Role.NURSE]
        )
        systolics[session_id] = [r["systolic"] for r in readings.json()]
    assert systolics == {first.json()["id"]: [131], second_id: [142]}

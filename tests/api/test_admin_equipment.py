"""Issue #14, admin screens: chairs renamed and retired, protocols read, over REST."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import CUFF, Ward
from vitalsd.clinic import Clinic
from vitalsd.domain import Role

Auth = dict[Role, dict[str, str]]


async def _chair(client: httpx.AsyncClient, auth: Auth, name: str) -> int:
    created = await client.post("/api/chairs", json={"name": name}, headers=auth[Role.ADMIN])
    assert created.status_code == 201
    return int(created.json()["id"])


async def _audit(client: httpx.AsyncClient, auth: Auth, chair_id: int) -> list[dict[str, object]]:
    found = await client.get(
        "/api/audit", params={"entity": "chair", "entity_id": chair_id}, headers=auth[Role.ADMIN]
    )
    assert found.status_code == 200
    body = found.json()
    return list(body["items"] if isinstance(body, dict) else body)


async def test_admin_renames_a_chair_and_the_audit_keeps_both_names(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    chair_id = await _chair(client, auth, "Chair 7")
    renamed = await client.patch(
        f"/api/chairs/{chair_id}", json={"name": "Window chair"}, headers=auth[Role.ADMIN]
    )
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Window chair"
    fetched = await client.get(f"/api/chairs/{chair_id}", headers=auth[Role.NURSE])
    assert fetched.json()["name"] == "Window chair"
    audit = await _audit(client, auth, chair_id)
    assert any(
        a["action"] == "renamed"
        and a["from_state"] == "Chair 7"
        and a["to_state"] == "Window chair"
        for a in audit
    )


async def test_renaming_to_a_taken_name_is_409(client: httpx.AsyncClient, auth: Auth) -> None:
    await _chair(client, auth, "Chair A")
    chair_id = await _chair(client, auth, "Chair B")
    response = await client.patch(
        f"/api/chairs/{chair_id}", json={"name": "Chair A"}, headers=auth[Role.ADMIN]
    )
    assert response.status_code == 409
    assert "Chair A" in response.json()["detail"]


@pytest.mark.parametrize("name", ["", "   ", "a\nb", "x" * 65])
async def test_renaming_to_a_bad_name_is_422(
    client: httpx.AsyncClient, auth: Auth, name: str
) -> None:
    chair_id = await _chair(client, auth, "Chair C")
    response = await client.patch(
        f"/api/chairs/{chair_id}", json={"name": name}, headers=auth[Role.ADMIN]
    )
    assert response.status_code == 422


async def test_renaming_an_unknown_chair_is_404(client: httpx.AsyncClient, auth: Auth) -> None:
    response = await client.patch(
        "/api/chairs/999", json={"name": "Nowhere"}, headers=auth[Role.ADMIN]
    )
    assert response.status_code == 404


@pytest.mark.parametrize("role", [Role.NURSE, Role.CLINICIAN])
async def test_only_an_admin_renames_or_retires_a_chair(
    client: httpx.AsyncClient, auth: Auth, role: Role
) -> None:
    chair_id = await _chair(client, auth, "Chair D")
    renamed = await client.patch(
        f"/api/chairs/{chair_id}", json={"name": "Mine"}, headers=auth[role]
    )
    retired = await client.post(f"/api/chairs/{chair_id}/retire", headers=auth[role])
    assert (renamed.status_code, retired.status_code) == (403, 403)


async def test_a_retired_chair_leaves_the_ward_and_releases_its_cuff(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    retired = await client.post(f"/api/chairs/{ward.chair_id}/retire", headers=auth[Role.ADMIN])
    assert retired.status_code == 200
    body = retired.json()
    assert body["retired_at"] is not None and body["cuff_address"] is None
    chairs = (await client.get("/api/chairs", headers=auth[Role.NURSE])).json()
    assert [c["retired_at"] is not None for c in chairs if c["id"] == ward.chair_id] == [True]
    device = (await client.get(f"/api/devices/{CUFF}", headers=auth[Role.NURSE])).json()
    assert device["chair_id"] is None
    audit = await _audit(client, auth, ward.chair_id)
    assert any(a["action"] == "retired" and a["from_state"] == CUFF for a in audit)


async def test_a_retired_chair_is_not_in_the_snapshot(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clinic: Clinic
) -> None:
    await client.post(f"/api/chairs/{ward.chair_id}/retire", headers=auth[Role.ADMIN])
    snapshot = await clinic.snapshot()
    assert ward.chair_id not in [c.id for c in snapshot.chairs]


async def test_a_retired_chair_takes_no_session_and_no_cuff(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    await client.post(f"/api/chairs/{ward.chair_id}/retire", headers=auth[Role.ADMIN])
    started = await client.post(
        "/api/sessions",
        json={"patient_id": ward.patient_id, "chair_id": ward.chair_id},
        headers=auth[Role.CLINICIAN],
    )
    assert started.status_code == 409
    assert "retired" in started.json()["detail"]
    cuffed = await client.put(
        f"/api/chairs/{ward.chair_id}/cuff", json={"cuff_address": CUFF}, headers=auth[Role.ADMIN]
    )
    assert cuffed.status_code == 409


async def test_retiring_a_chair_with_an_open_session_is_409_and_changes_nothing(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    started = await client.post(
        "/api/sessions",
        json={"patient_id": ward.patient_id, "chair_id": ward.chair_id},
        headers=auth[Role.CLINICIAN],
    )
    assert started.status_code == 201
    refused = await client.post(f"/api/chairs/{ward.chair_id}/retire", headers=auth[Role.ADMIN])
    assert refused.status_code == 409
    assert "open session" in refused.json()["detail"]
    chair = (await client.get(f"/api/chairs/{ward.chair_id}", headers=auth[Role.NURSE])).json()
    assert chair["retired_at"] is None and chair["cuff_address"] == CUFF


async def test_retiring_twice_is_409(client: httpx.AsyncClient, auth: Auth) -> None:
    chair_id = await _chair(client, auth, "Chair E")
    first = await client.post(f"/api/chairs/{chair_id}/retire", headers=auth[Role.ADMIN])
    again = await client.post(f"/api/chairs/{chair_id}/retire", headers=auth[Role.ADMIN])
    assert (first.status_code, again.status_code) == (200, 409)


async def test_every_role_reads_the_protocols_the_active_one_first(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    for role in Role:
        listed = await client.get("/api/protocols", headers=auth[role])
        assert listed.status_code == 200
        body = listed.json()
        assert body[0]["active"] is True
        assert {"esketamine-rems", "iv-infusion", "ketamine-psychotherapy"} <= {
            p["name"] for p in body
        }


async def test_a_protocol_reads_as_its_files_numbers(client: httpx.AsyncClient, auth: Auth) -> None:
    response = await client.get("/api/protocols/esketamine-rems", headers=auth[Role.NURSE])
    assert response.status_code == 200
    body = response.json()
    assert body["thresholds"]["hold_systolic"] == 160
    assert body["safety"]["recent_bp_minutes"] == 30
    assert body["post_dose"]["opens_after_minutes"] == 35
    assert body["post_dose"]["when"] == ["always"]
    assert {"drug": "esketamine", "route": "intranasal", "min_mg": 28, "max_mg": 84} in body[
        "doses"
    ]


async def test_an_unknown_protocol_is_404_and_a_bad_name_422(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    unknown = await client.get("/api/protocols/nope", headers=auth[Role.ADMIN])
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": "no protocol named 'nope'"}
    bad = await client.get("/api/protocols/a%20b", headers=auth[Role.ADMIN])
    assert bad.status_code == 422


async def test_protocols_need_a_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/protocols")).status_code == 401


@pytest.mark.parametrize(
    ("protocol", "expected"),
    [
        ("esketamine-rems", {"drug": "esketamine", "route": "intranasal", "amount_mg": 28}),
        ("iv-infusion", {"drug": "ketamine", "route": "IV", "amount_mg": None}),
        ("ketamine-psychotherapy", {"drug": "ketamine", "route": "IM", "amount_mg": None}),
    ],
)
async def test_the_dose_form_starts_from_the_drug_the_protocol_is_named_for(
    client: httpx.AsyncClient, auth: Auth, protocol: str, expected: dict[str, object]
) -> None:
    response = await client.get(f"/api/protocols/{protocol}", headers=auth[Role.CLINICIAN])
    assert response.json()["default_dose"] == expected


async def test_renaming_and_retiring_are_chair_updated_events(
    client: httpx.AsyncClient, auth: Auth, clinic: Clinic
) -> None:
    chair_id = await _chair(client, auth, "Chair F")
    after = await clinic.bus.last_seq()
    await client.patch(
        f"/api/chairs/{chair_id}", json={"name": "Chair G"}, headers=auth[Role.ADMIN]
    )
    await client.post(f"/api/chairs/{chair_id}/retire", headers=auth[Role.ADMIN])
    events = await clinic.bus.stored_after(after)
    updates = [e.data for e in events if e.type.value == "chair_updated"]
    assert [(u["id"], u["name"], u["retired_at"] is not None) for u in updates] == [
        (chair_id, "Chair G", False),
        (chair_id, "Chair G", True),
    ]

"""Alerts, the audit log and the health check over REST."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from api.app import create_app
from tests.api.conftest import FakeClock, Ward
from tests.api.test_sessions import reading, start
from vitalsd.auth import PasswordHasher, TokenIssuer
from vitalsd.clinic import Clinic
from vitalsd.domain import Role
from vitalsd.settings import Settings

Auth = dict[Role, dict[str, str]]


async def severe_alert(client: httpx.AsyncClient, auth: Auth, ward: Ward) -> dict[str, Any]:
    session = await start(client, auth, ward)
    await reading(client, auth, session["id"], 186, 112)
    alerts = await client.get(
        "/api/alerts",
        params={"session_id": session["id"], "kind": "severe_hypertension"},
        headers=auth[Role.NURSE],
    )
    [alert] = alerts.json()
    assert isinstance(alert, dict)
    return alert


async def test_severe_reading_raises_a_high_priority_alert(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    alert = await severe_alert(client, auth, ward)
    assert (alert["priority"], alert["state"]) == ("high", "active")
    assert {"id", "kind", "priority", "state", "message", "session_id", "chair_id"} <= set(alert)
    fetched = await client.get(f"/api/alerts/{alert['id']}", headers=auth[Role.NURSE])
    assert fetched.json() == alert


async def test_nurse_acknowledges_an_alert(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    alert = await severe_alert(client, auth, ward)
    acked = await client.post(f"/api/alerts/{alert['id']}/acknowledge", headers=auth[Role.NURSE])
    assert (acked.json()["state"], acked.json()["acknowledged_by"]) == ("acknowledged", "nurse")


async def test_alert_filters_by_state(client: httpx.AsyncClient, auth: Auth, ward: Ward) -> None:
    alert = await severe_alert(client, auth, ward)
    await client.post(f"/api/alerts/{alert['id']}/acknowledge", headers=auth[Role.NURSE])
    active = await client.get("/api/alerts?state=active", headers=auth[Role.NURSE])
    assert alert["id"] not in [a["id"] for a in active.json()]
    acknowledged = await client.get(
        "/api/alerts?state=acknowledged&state=snoozed", headers=auth[Role.NURSE]
    )
    assert alert["id"] in [a["id"] for a in acknowledged.json()]


async def test_unknown_alert_state_filter_is_422(client: httpx.AsyncClient, auth: Auth) -> None:
    response = await client.get("/api/alerts?state=sleeping", headers=auth[Role.NURSE])
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "state", 0]


async def test_nurse_snoozes_an_alert_for_a_limited_time(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    alert = await severe_alert(client, auth, ward)
    snoozed = await client.post(
        f"/api/alerts/{alert['id']}/snooze", json={"minutes": 5}, headers=auth[Role.NURSE]
    )
    assert snoozed.json()["state"] == "snoozed"
    assert snoozed.json()["snoozed_until"] is not None


async def test_snooze_longer_than_the_clinics_maximum_is_422(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    alert = await severe_alert(client, auth, ward)
    response = await client.post(
        f"/api/alerts/{alert['id']}/snooze", json={"minutes": 600}, headers=auth[Role.NURSE]
    )
    assert response.status_code == 422
    assert "at most" in response.json()["detail"][0]["msg"]


async def test_clinician_resolves_an_alert_with_a_note(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    alert = await severe_alert(client, auth, ward)
    resolved = await client.post(
        f"/api/alerts/{alert['id']}/resolve",
        json={"note": "repeat reading 150/90"},
        headers=auth[Role.CLINICIAN],
    )
    assert resolved.json()["state"] == "resolved"
    assert resolved.json()["resolution_note"] == "repeat reading 150/90"
    again = await client.post(f"/api/alerts/{alert['id']}/acknowledge", headers=auth[Role.NURSE])
    assert again.status_code == 409


async def test_nurse_may_not_acknowledge_a_dosing_hold(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    session = await start(client, auth, ward)
    await reading(client, auth, session["id"], 165, 102)
    [hold] = (await client.get("/api/alerts?kind=dosing_hold", headers=auth[Role.NURSE])).json()
    response = await client.post(f"/api/alerts/{hold['id']}/acknowledge", headers=auth[Role.NURSE])
    assert response.status_code == 403
    assert "clinician" in response.json()["detail"]


async def test_acting_on_an_unknown_alert_is_404(client: httpx.AsyncClient, auth: Auth) -> None:
    response = await client.post("/api/alerts/4242/acknowledge", headers=auth[Role.NURSE])
    assert response.status_code == 404


async def test_admin_reads_who_did_what_in_the_audit_log(
    client: httpx.AsyncClient, auth: Auth, ward: Ward
) -> None:
    alert = await severe_alert(client, auth, ward)
    await client.post(f"/api/alerts/{alert['id']}/acknowledge", headers=auth[Role.NURSE])
    audit = await client.get("/api/audit", params={"entity": "alert"}, headers=auth[Role.ADMIN])
    assert ("nurse", "acknowledged") in [(a["actor"], a["action"]) for a in audit.json()]


async def test_health_needs_no_token_and_says_only_ok_to_anyone(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_health_reports_database_and_radio_to_a_signed_in_admin(
    client: httpx.AsyncClient, auth: dict[Role, dict[str, str]]
) -> None:
    response = await client.get("/healthz", headers=auth[Role.ADMIN])
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["ble"] == {"state": "not_running"}


async def test_health_tells_a_nurse_the_event_log_head_but_not_the_details(
    client: httpx.AsyncClient, auth: dict[Role, dict[str, str]]
) -> None:
    body = (await client.get("/healthz", headers=auth[Role.NURSE])).json()
    assert set(body) == {"status", "last_seq"}


async def test_unknown_api_path_is_a_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/does-not-exist")
    assert response.status_code == 404
    assert "no route" in response.json()["detail"]


async def test_dashboard_is_served_at_the_root(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


async def test_health_details_may_be_made_public_for_a_monitor(
    clinic: Clinic, tmp_path: Path, clock: FakeClock, tokens: TokenIssuer
) -> None:
    app = create_app(
        clinic,
        Settings(data_dir=tmp_path, public_health_details=True),
        tokens=tokens,
        passwords=PasswordHasher(),
        clock=clock,
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://vitalsd.test"
    ) as http:
        body = (await http.get("/healthz")).json()
    assert body["ble"] == {"state": "not_running"}

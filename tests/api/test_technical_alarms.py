"""`nobody_watching` end to end (issue #15): the daemon serving a real uvicorn, a session
open and no dashboard on `/ws` -> a high alert, stored and published; a dashboard
connects -> it resolves, and the dashboard is told. Deadlines are guards, never timings."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, date
from pathlib import Path
from typing import Any

import httpx
import pytest
from bumble.link import LocalLink
from websockets.asyncio.client import ClientConnection, connect

from devices.bumble_backend import BumbleHost
from vitalsd.auth import token_issuer_for
from vitalsd.clinic import Actor, Clinic
from vitalsd.daemon import Daemon
from vitalsd.domain import Role
from vitalsd.settings import Settings
from vitalsd.views import AlertView

CENTRAL = "C0:11:22:33:44:09"
STAFF = Actor("setup", Role.ADMIN)
# A guard against a hang, never a timing assertion.
PATIENCE_S = 30.0
POLL_S = 0.05


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path, port=0, nobody_watching_after_seconds=1, public_health_details=True
    )


@pytest.fixture
async def clinic(settings: Settings) -> AsyncIterator[Clinic]:
    service = await Clinic.open(settings)
    yield service
    await service.close()


@pytest.fixture
async def daemon(settings: Settings, clinic: Clinic) -> AsyncIterator[Daemon]:
    """The daemon with a Bumble radio that has no cuff near it."""
    central = await BumbleHost.on_link(LocalLink(), address=CENTRAL)  # type: ignore[no-untyped-call]
    daemon = Daemon(settings, clinic, ble=central, zone=UTC)
    ready = asyncio.Event()
    running = asyncio.create_task(daemon.run(on_ready=lambda _url: ready.set()))
    try:
        async with asyncio.timeout(PATIENCE_S):
            await ready.wait()
        yield daemon
    finally:
        daemon.stop()
        await running
        await central.close()


async def open_session(clinic: Clinic) -> int:
    patient = await clinic.create_patient("MRN-9", "Sam Roe", date(1981, 2, 3), by=STAFF)
    chair = await clinic.create_chair("Chair 1", by=STAFF)
    session = await clinic.start_session(patient.id, chair.id, by=Actor("dr", Role.CLINICIAN))
    return session.id


async def nobody_watching_alert(clinic: Clinic, state: str) -> AlertView:
    """The `nobody_watching` alert once it is in `state` (polled; PATIENCE_S at most)."""
    async with asyncio.timeout(PATIENCE_S):
        while True:
            for alert in await clinic.list_alerts(kind="nobody_watching"):
                if alert.state == state:
                    return alert
            await asyncio.sleep(POLL_S)


async def next_event(websocket: ClientConnection, type_: str, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(PATIENCE_S):
        while True:
            event: dict[str, Any] = json.loads(await websocket.recv())
            if event["type"] == type_ and event["data"].get("kind") == kind:
                return event


async def test_no_dashboard_raises_nobody_watching_and_a_dashboard_resolves_it(
    settings: Settings, clinic: Clinic, daemon: Daemon
) -> None:
    await clinic.create_user("nurse", "not-a-hash: tokens are issued directly", Role.NURSE)
    token = token_issuer_for(settings).issue("nurse", Role.NURSE, clinic.now())
    assert daemon.url is not None
    base = daemon.url.replace("http", "ws") + f"ws?token={token}"
    # A stream that takes no alerts is no dashboard: it watches nothing.
    async with connect(f"{base}&types=reading") as readings_only:
        assert json.loads(await readings_only.recv())["type"] == "snapshot"
        await open_session(clinic)
        raised = await nobody_watching_alert(clinic, "active")
    assert (raised.priority, raised.session_id, raised.chair_id) == ("high", None, None)
    stored = [e for e in await clinic.bus.stored_after(0) if e.type.value == "alert"]
    assert [e.data["id"] for e in stored if e.data["kind"] == "nobody_watching"] == [raised.id]

    async with connect(f"{base}&since=0") as dashboard:
        snapshot = json.loads(await dashboard.recv())
        assert snapshot["type"] == "snapshot"
        replayed = await next_event(dashboard, "alert", "nobody_watching")
        assert replayed["data"]["id"] == raised.id
        resolved = await next_event(dashboard, "alert_updated", "nobody_watching")
        assert (resolved["data"]["id"], resolved["data"]["state"]) == (raised.id, "resolved")
        async with httpx.AsyncClient() as http:
            health = (await http.get(f"{daemon.url}healthz")).json()
        assert health["streams"]["watching"] == 1
    assert (await clinic.get_alert(raised.id)).state == "resolved"


async def test_the_wards_technical_alerts_are_listed_without_session_or_chair(
    settings: Settings, clinic: Clinic, daemon: Daemon
) -> None:
    await clinic.create_user("nurse", "not-a-hash: tokens are issued directly", Role.NURSE)
    token = token_issuer_for(settings).issue("nurse", Role.NURSE, clinic.now())
    await clinic.channel_failing("ward-pager", "HTTP 503, 3 times in a row")
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http:
        response = await http.get(f"{daemon.url}api/alerts", params={"state": "active"})
    assert response.status_code == 200
    body = response.json()
    items = body["items"] if isinstance(body, dict) else body
    (alert,) = [a for a in items if a["kind"] == "channel_failing"]
    assert (alert["priority"], alert["session_id"], alert["chair_id"]) == ("medium", None, None)

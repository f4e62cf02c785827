"""The daemon in one process: a simulated cuff's reading travels over a Bumble virtual
link through the Bleak backend, the supervisor and the clinic to the `/ws` stream."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bumble.link import LocalLink
from websockets.asyncio.client import connect

from devices.bps import BloodPressureMeasurement, PressureUnit
from devices.bumble_backend import BumbleHost, VirtualController
from devices.events import CuffIdentity, MeasurementReceived
from devices.transport import ADDRESS_FILE_NAME
from simulators.clock import SimClock
from simulators.cuff import CuffConfig, SimulatedCuff
from simulators.radio import VirtualRadio
from vitalsd.auth import token_issuer_for
from vitalsd.clinic import Actor, Clinic
from vitalsd.daemon import BleStatus, CuffEventSink, Daemon
from vitalsd.domain import Role
from vitalsd.settings import Settings

CUFF = "D0:11:22:33:44:01"
CENTRAL = "C0:11:22:33:44:01"
# Simulated seconds per real second: the cuff's 30 s measurement takes 0.1 s.
SPEED = 300.0
# A guard against a hang, never a timing assertion.
PATIENCE_S = 30.0
STAFF = Actor("setup", Role.ADMIN)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, port=0)


@pytest.fixture
def clock() -> SimClock:
    return SimClock(SPEED)


@pytest.fixture
async def clinic(settings: Settings, clock: SimClock) -> AsyncIterator[Clinic]:
    service = await Clinic.open(settings, clock=clock.now)
    yield service
    await service.close()


async def test_simulated_cuff_reading_reaches_the_stream_through_the_daemon(
    settings: Settings, clinic: Clinic, clock: SimClock
) -> None:
    link = LocalLink()  # type: ignore[no-untyped-call]
    await clinic.create_user("nurse", "not-a-hash: tokens are issued directly", Role.NURSE)
    patient = await clinic.create_patient("MRN-7", "Pat Lee", date(1975, 5, 5), by=STAFF)
    chair = await clinic.create_chair("Chair 1", by=STAFF)
    await clinic.assign_cuff(chair.id, CUFF, by=STAFF)
    session = await clinic.start_session(patient.id, chair.id, by=Actor("dr", Role.CLINICIAN))
    cuff = SimulatedCuff(
        CuffConfig(address=CUFF, measurement_interval=timedelta(minutes=5)), clock=clock, link=link
    )
    central = await BumbleHost.on_link(link, address=CENTRAL)
    daemon = Daemon(settings, clinic, ble=central, clock=clock.now, zone=UTC)
    ready = asyncio.Event()
    running = asyncio.create_task(daemon.run(on_ready=lambda _url: ready.set()))
    token = token_issuer_for(settings).issue("nurse", Role.NURSE, clock.now())
    readings: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(PATIENCE_S):
            await ready.wait()
            assert daemon.url is not None
            stream_url = daemon.url.replace("http", "ws") + f"ws?token={token}&types=reading"
            async with connect(stream_url) as websocket:
                assert json.loads(await websocket.recv())["type"] == "snapshot"
                await cuff.start()
                while not readings:
                    readings.append(json.loads(await websocket.recv()))
    finally:
        daemon.stop()
        await running
        await cuff.stop()
        await central.close()
    [reading] = readings
    assert reading["data"]["source"] == "cuff"
    assert reading["data"]["session_id"] == session.id
    assert reading["data"]["device_address"] == CUFF
    [logged] = cuff.measurement_log[:1]
    assert reading["data"]["systolic"] == logged.measurement.systolic


async def test_stop_closes_the_cuff_links_and_returns(
    settings: Settings, clinic: Clinic, clock: SimClock
) -> None:
    link = LocalLink()  # type: ignore[no-untyped-call]
    cuff = SimulatedCuff(CuffConfig(address=CUFF), clock=clock, link=link)
    await cuff.start()
    central = await BumbleHost.on_link(link, address=CENTRAL)
    daemon = Daemon(settings, clinic, ble=central, clock=clock.now, zone=UTC)
    running = asyncio.create_task(daemon.run())
    try:
        async with asyncio.timeout(PATIENCE_S):
            await cuff.wait_for(lambda c: c.connected)
            daemon.stop()
            await running
            await cuff.wait_for(lambda c: not c.connected)
    finally:
        await cuff.stop()
        await central.close()
    assert daemon.status.state == "stopped"


async def test_the_stream_is_served_without_per_message_compression(
    settings: Settings, clinic: Clinic, clock: SimClock
) -> None:
    """Frames are small and go to hundreds of tablets: deflating each per client is the
    largest per-client cost (issue #9), so the daemon declines the client's offer."""
    await clinic.create_user("nurse", "not-a-hash: tokens are issued directly", Role.NURSE)
    central = await BumbleHost.on_link(LocalLink(), address=CENTRAL)  # type: ignore[no-untyped-call]
    daemon = Daemon(settings, clinic, ble=central, clock=clock.now, zone=UTC)
    ready = asyncio.Event()
    running = asyncio.create_task(daemon.run(on_ready=lambda _url: ready.set()))
    token = token_issuer_for(settings).issue("nurse", Role.NURSE, clock.now())
    try:
        async with asyncio.timeout(PATIENCE_S):
            await ready.wait()
            assert daemon.url is not None
            stream_url = daemon.url.replace("http", "ws") + f"ws?token={token}"
            async with connect(stream_url, compression="deflate") as websocket:
                assert json.loads(await websocket.recv())["type"] == "snapshot"
                assert websocket.request is not None and websocket.response is not None
                offered = websocket.request.headers.get("Sec-WebSocket-Extensions")
                accepted = websocket.response.headers.get("Sec-WebSocket-Extensions")
    finally:
        daemon.stop()
        await running
        await central.close()
    assert offered is not None and "permessage-deflate" in offered
    assert accepted is None


def reading_from(identity: CuffIdentity, at: datetime, systolic: float) -> MeasurementReceived:
    measurement = BloodPressureMeasurement(
        PressureUnit.MMHG, systolic, 80.0, 95.0, at.replace(tzinfo=None), user_id=1
    )
    return MeasurementReceived(
        identity, measurement, at, at, bytes(measurement), cuff_key=f"{at.isoformat()} u1"
    )


async def test_a_readings_unchanged_identity_does_not_touch_the_device_row(
    clinic: Clinic, clock: SimClock
) -> None:
    """The device row's last sighting moves only when the sink writes it: a second reading
    an hour later from the same cuff, same identity, leaves it alone."""
    sink = CuffEventSink(clinic, BleStatus("bumble"))
    identity = CuffIdentity(CUFF, "SIM-BP 1", "Simulated", "SIM-BP", "SIM-0001", "1.0")
    first = clock.now().replace(microsecond=0)
    await sink(reading_from(identity, first, 120.0))
    await sink(reading_from(identity, first + timedelta(hours=1), 121.0))
    [device] = await clinic.list_devices()
    assert device.last_seen_at == first


async def test_a_readings_changed_identity_is_written(clinic: Clinic, clock: SimClock) -> None:
    sink = CuffEventSink(clinic, BleStatus("bumble"))
    identity = CuffIdentity(CUFF, "SIM-BP 1", "Simulated", "SIM-BP", "SIM-0001", "1.0")
    first = clock.now().replace(microsecond=0)
    await sink(reading_from(identity, first, 120.0))
    updated = CuffIdentity(CUFF, "SIM-BP 1", "Simulated", "SIM-BP", "SIM-0001", "1.1")
    await sink(reading_from(updated, first + timedelta(hours=1), 121.0))
    [device] = await clinic.list_devices()
    assert device.firmware == "1.1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_a_restarted_daemon_re_encrypts_with_the_bond_it_kept(
    tmp_path: Path, clinic: Clinic, clock: SimClock
) -> None:
    """Bonds and our own address live in the data directory: the second run on the same
    controller reads a reading over an encrypted link without pairing again."""
    port = free_port()
    settings = Settings(data_dir=tmp_path, port=0, ble=f"bumble:tcp-client:127.0.0.1:{port}")
    async with VirtualRadio() as radio:
        await radio.expose_hci(f"tcp-server:127.0.0.1:{port}", controller_class=VirtualController)
        # BPS 1.0: a reading leaves the cuff only when confirmed, over an encrypted link.
        cuff = SimulatedCuff(
            CuffConfig(address=CUFF, record_style="bps10"), clock=clock, link=radio.link
        )
        await cuff.start()
        try:
            for _run in range(2):
                daemon = Daemon(settings, clinic, clock=clock.now, zone=UTC)
                running = asyncio.create_task(daemon.run())
                try:
                    async with asyncio.timeout(PATIENCE_S):
                        await cuff.wait_for(lambda c: c.connected)
                        await cuff.measure()
                        await cuff.wait_for(lambda c: not c.stored)
                finally:
                    daemon.stop()
                    await running
        finally:
            await cuff.stop()
    our_address = (tmp_path / ADDRESS_FILE_NAME).read_text().strip()
    assert cuff.pairings == [our_address]


async def test_a_reading_delivered_again_under_another_clock_correction_is_stored_once(
    clinic: Clinic, clock: SimClock
) -> None:
    """A restarted daemon corrects a record's time differently (it did not set the cuff's
    clock); the sink hands the clinic the cuff's own key, which does not change."""
    sink = CuffEventSink(clinic, BleStatus("bumble"))
    identity = CuffIdentity(CUFF, "SIM-BP 1")
    at = clock.now().replace(microsecond=0)
    first = reading_from(identity, at, 120.0)
    again = replace(first, measured_at=at + timedelta(seconds=2))
    await sink(first)
    await sink(again)
    assert len(await clinic.list_readings(device_address=CUFF)) == 1

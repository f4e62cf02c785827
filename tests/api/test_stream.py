"""The `/ws` stream under a real uvicorn on loopback, read with the `websockets` client
(issue #6 "WebSocket /ws")."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from api.app import create_app
from api.deps import TOKEN_COOKIE
from devices.bps import BloodPressureMeasurement, PressureUnit
from tests.api.conftest import ADMIN, CUFF, SECRET, FakeClock, Ward, open_clinic, serving
from vitalsd.auth import PasswordHasher, TokenIssuer
from vitalsd.clinic import Clinic
from vitalsd.cuff_readings import cuff_reading as domain_reading
from vitalsd.domain import Role
from vitalsd.settings import Settings

Event = dict[str, Any]


@pytest.fixture
async def server(app: FastAPI) -> AsyncIterator[str]:
    async with serving(app) as address:
        yield address


@pytest.fixture
def token(tokens: TokenIssuer, clock: FakeClock) -> str:
    return tokens.issue("nurse", Role.NURSE, clock())


async def receive(websocket: ClientConnection) -> Event:
    message: Event = json.loads(await asyncio.wait_for(websocket.recv(), 10))
    return message


async def receive_until(websocket: ClientConnection, last_seq: int) -> list[Event]:
    """Every event up to and including `last_seq`."""
    events: list[Event] = []
    while not events or events[-1]["seq"] != last_seq:
        events.append(await receive(websocket))
    return events


async def start_session(clinic: Clinic, ward: Ward) -> int:
    session = await clinic.start_session(ward.patient_id, ward.chair_id, by=ADMIN)
    return session.id


async def cuff_reading(clinic: Clinic, clock: FakeClock, systolic: float, diastolic: float) -> None:
    """A cuff's Blood Pressure Measurement as the supervisor hands it to the clinic."""
    measurement = BloodPressureMeasurement(
        unit=PressureUnit.MMHG,
        systolic=systolic,
        diastolic=diastolic,
        mean_arterial_pressure=round(diastolic + (systolic - diastolic) / 3),
        pulse_rate=70,
    )
    await clinic.ingest_cuff_measurement(
        CUFF, domain_reading(measurement), clock(), bytes(measurement)
    )


async def test_first_message_is_the_snapshot_of_the_clinic(
    server: str, token: str, clinic: Clinic, ward: Ward
) -> None:
    session_id = await start_session(clinic, ward)
    async with connect(f"ws://{server}/ws?token={token}") as websocket:
        first = await receive(websocket)
    assert first["type"] == "snapshot"
    assert first["seq"] is None
    data = first["data"]
    assert set(data) >= {
        "seq",
        "chairs",
        "sessions",
        "latest_readings",
        "active_alerts",
        "due_checks",
    }
    assert [s["id"] for s in data["sessions"]] == [session_id]
    assert data["seq"] == await clinic.bus.last_seq()


async def test_cuff_reading_reaches_the_stream_live(
    server: str, token: str, clinic: Clinic, ward: Ward, clock: FakeClock
) -> None:
    session_id = await start_session(clinic, ward)
    async with connect(f"ws://{server}/ws?token={token}") as websocket:
        snapshot = await receive(websocket)
        await cuff_reading(clinic, clock, 132, 84)
        events = await receive_until(websocket, await clinic.bus.last_seq())
    readings = [e for e in events if e["type"] == "reading"]
    assert len(readings) == 1
    data = readings[0]["data"]
    assert (data["session_id"], data["chair_id"], data["patient_id"]) == (
        session_id,
        ward.chair_id,
        ward.patient_id,
    )
    assert (data["systolic"], data["diastolic"], data["source"]) == (132.0, 84.0, "cuff")
    assert {"mean_arterial_pressure", "pulse_rate", "measured_at", "flags", "category"} <= set(data)
    assert [e["seq"] for e in events] == list(
        range(snapshot["data"]["seq"] + 1, events[-1]["seq"] + 1)
    )


async def test_since_replays_what_was_missed_then_continues_live(
    server: str, token: str, clinic: Clinic, ward: Ward, clock: FakeClock
) -> None:
    await start_session(clinic, ward)
    async with connect(f"ws://{server}/ws?token={token}") as websocket:
        await receive(websocket)
        await cuff_reading(clinic, clock, 120, 80)
        seen = await receive_until(websocket, await clinic.bus.last_seq())
    # Offline: the tablet lost its Wi-Fi while these happened.
    clock.advance(minutes=5)
    await cuff_reading(clinic, clock, 185, 112)
    missed_through = await clinic.bus.last_seq()
    last_seen = seen[-1]["seq"]
    async with connect(f"ws://{server}/ws?token={token}&since={last_seen}") as websocket:
        assert (await receive(websocket))["type"] == "snapshot"
        replayed = await receive_until(websocket, missed_through)
        clock.advance(minutes=5)
        await cuff_reading(clinic, clock, 150, 90)
        live = await receive_until(websocket, await clinic.bus.last_seq())
    seqs = [e["seq"] for e in replayed + live]
    assert seqs == list(range(last_seen + 1, live[-1]["seq"] + 1))
    assert "alert" in [e["type"] for e in replayed]


async def test_types_filter_sends_only_those_types(
    server: str, token: str, clinic: Clinic, ward: Ward, clock: FakeClock
) -> None:
    await start_session(clinic, ward)
    async with connect(f"ws://{server}/ws?token={token}&types=alert,alert_updated") as websocket:
        await receive(websocket)
        await cuff_reading(clinic, clock, 186, 114)
        alert = await receive(websocket)
    assert alert["type"] == "alert"
    assert alert["data"]["kind"] == "severe_hypertension"
    assert {"id", "priority", "kind", "message", "state", "session_id", "chair_id"} <= set(
        alert["data"]
    )


async def test_token_may_come_as_bearer_header_or_cookie(server: str, token: str) -> None:
    async with connect(
        f"ws://{server}/ws", additional_headers={"Authorization": f"Bearer {token}"}
    ) as websocket:
        assert (await receive(websocket))["type"] == "snapshot"
    async with connect(
        f"ws://{server}/ws", additional_headers={"Cookie": f"{TOKEN_COOKIE}={token}"}
    ) as websocket:
        assert (await receive(websocket))["type"] == "snapshot"


async def test_stream_without_a_token_is_refused_with_401(server: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"ws://{server}/ws"):
            pass
    assert refused.value.response.status_code == 401
    assert b"not authenticated" in refused.value.response.body


async def test_stream_with_a_bad_since_is_refused_with_422(server: str, token: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"ws://{server}/ws?token={token}&since=yesterday"):
            pass
    assert refused.value.response.status_code == 422


async def test_stream_with_an_unknown_type_is_refused_naming_it(server: str, token: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"ws://{server}/ws?token={token}&types=alert,gossip"):
            pass
    assert refused.value.response.status_code == 422
    assert b"gossip" in refused.value.response.body


def small_receive_buffer_socket(address: str) -> socket.socket:
    """A client socket that holds little unread data, so a client that stops reading
    backs up to the server quickly."""
    host, port = address.split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.setblocking(False)
    return sock


async def test_slow_consumer_is_cut_off_with_1013_without_delaying_a_fast_one(
    tmp_path: Path,
    database_template: Path,
    tokens: TokenIssuer,
    passwords: PasswordHasher,
    clock: FakeClock,
) -> None:
    clinic = await open_clinic(database_template, tmp_path, clock=clock)
    app = create_app(
        clinic,
        Settings(data_dir=tmp_path),
        tokens=tokens,
        passwords=passwords,
        clock=clock,
        stream_queue_size=16,
    )
    hub = app.state.context.hub
    token = tokens.issue("nurse", Role.NURSE, clock())
    try:
        async with serving(app, send_buffer=4096) as address:
            url = f"ws://{address}/ws?token={token}"
            slow = await connect(
                url, sock=small_receive_buffer_socket(address), compression=None, max_queue=1
            )
            async with connect(url) as fast:
                await receive(fast)
                fast_events: list[Event] = []
                produced = 0
                # Cuff after cuff reports battery and signal: many small events.
                while hub.cut_off == 0 and produced < 5000:
                    produced += 1
                    await clinic.update_device(
                        f"D0:00:00:00:{produced // 256:02X}:{produced % 256:02X}",
                        name="Simulated cuff " + "x" * 100,
                        rssi=-50,
                    )
                    while True:  # the fast client keeps up: read what has arrived
                        try:
                            fast_events.append(json.loads(await asyncio.wait_for(fast.recv(), 0)))
                        except TimeoutError:
                            break
                last = await clinic.bus.last_seq()
                if not fast_events or fast_events[-1]["seq"] != last:
                    fast_events += await receive_until(fast, last)
            slow_events: list[Event] = []
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    slow_events.append(await receive(slow))
    finally:
        await clinic.close()
    assert hub.cut_off == 1
    assert [e["seq"] for e in fast_events] == list(range(fast_events[0]["seq"], last + 1))
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1013
    resume = re.search(r"since=(\d+)", closed.value.rcvd.reason)
    assert resume is not None
    assert int(resume.group(1)) == slow_events[-1]["seq"]
    assert slow_events[-1]["seq"] < last


async def test_stream_closes_with_1008_when_the_token_expires(
    server: str, clock: FakeClock
) -> None:
    short = TokenIssuer(SECRET, lifetime=timedelta(seconds=1)).issue("nurse", Role.NURSE, clock())
    async with connect(f"ws://{server}/ws?token={short}") as websocket:
        assert (await receive(websocket))["type"] == "snapshot"
        with pytest.raises(ConnectionClosed) as closed:
            await receive(websocket)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    assert "expired" in closed.value.rcvd.reason


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One unmasked server frame (RFC 6455 5.2): its opcode and payload."""
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        length = int.from_bytes(await reader.readexactly(2), "big")
    elif length == 127:
        length = int.from_bytes(await reader.readexactly(8), "big")
    return first & 0x0F, await reader.readexactly(length)


async def test_server_pings_a_connected_client(app: FastAPI, token: str) -> None:
    """RFC 6455 5.5.2: the server sends Ping frames (opcode 0x9), so a vanished tablet
    is noticed even when no event flows. Read with a bare socket: a WebSocket library
    would answer the ping before a test could see it."""
    async with serving(app, ping_interval=0.2) as address:
        host, port = address.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            (
                f"GET /ws?token={token} HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        status = await reader.readuntil(b"\r\n\r\n")
        opcodes = []
        async with asyncio.timeout(10):
            while 0x9 not in opcodes:
                opcode, _payload = await read_frame(reader)
                opcodes.append(opcode)
        writer.close()
    assert status.startswith(b"HTTP/1.1 101")
    assert opcodes[0] == 0x1  # the snapshot, a text frame
    assert 0x9 in opcodes

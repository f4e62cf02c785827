"""`/ws` at scale (issue #9): events encoded once and shared, types filtered before the
client's queue, connect storms sharing one snapshot and one user lookup behind a bound,
and a disabled account's streams closed. Real uvicorn on loopback, `websockets` clients."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from api.app import create_app
from api.handshake import HandshakeLimits
from tests.api.conftest import ADMIN, FakeClock, Ward, open_clinic, serving
from tests.api.test_stream import cuff_reading, start_session
from vitalsd.auth import PasswordHasher, TokenIssuer
from vitalsd.clinic import Clinic
from vitalsd.domain import Role
from vitalsd.settings import Settings
from vitalsd.store.events import EventType

STORM_PER_ROLE = 5
# Long enough that nothing expires during a test on a loaded machine: what is counted is
# then the sharing itself, not how fast the machine was.
FOREVER = HandshakeLimits(account_ttl_s=3600.0, snapshot_max_age_s=3600.0)


async def recv_text(websocket: ClientConnection) -> str:
    message = await asyncio.wait_for(websocket.recv(), 10)
    assert isinstance(message, str)
    return message


async def texts_until(websocket: ClientConnection, last_seq: int) -> list[str]:
    """Raw frames up to and including the event numbered `last_seq`."""
    texts: list[str] = []
    while not texts or json.loads(texts[-1])["seq"] != last_seq:
        texts.append(await recv_text(websocket))
    return texts


@pytest.fixture
async def server(app: FastAPI) -> AsyncIterator[str]:
    async with serving(app) as address:
        yield address


def token_for(tokens: TokenIssuer, clock: FakeClock, role: Role) -> str:
    return tokens.issue(role.value, role, clock())


async def test_a_pager_client_gets_no_readings_and_the_others_identical_frames(
    server: str, tokens: TokenIssuer, clock: FakeClock, clinic: Clinic, ward: Ward
) -> None:
    await start_session(clinic, ward)
    url = f"ws://{server}/ws?token={token_for(tokens, clock, Role.NURSE)}"
    async with (
        connect(url) as first,
        connect(url) as second,
        connect(url + "&types=alert") as pager,
    ):
        for websocket in (first, second, pager):
            await recv_text(websocket)  # the snapshot
        await cuff_reading(clinic, clock, 186, 114)  # severe: a reading and an alert
        last = await clinic.bus.last_seq()
        first_texts = await texts_until(first, last)
        second_texts = await texts_until(second, last)
        pager_types = [json.loads(await recv_text(pager))["type"]]
    assert "reading" in [json.loads(t)["type"] for t in first_texts]
    assert first_texts == second_texts
    assert pager_types == ["alert"]


async def test_subscribers_share_one_event_object_and_its_encoded_text(
    clinic: Clinic, ward: Ward, clock: FakeClock
) -> None:
    await start_session(clinic, ward)
    async with clinic.bus.subscribe() as first, clinic.bus.subscribe() as second:
        await cuff_reading(clinic, clock, 132, 84)
        one, other = await anext(first), await anext(second)
    assert one is other
    assert one.text is other.text


async def test_a_subscription_filtered_by_type_queues_nothing_else(
    clinic: Clinic, ward: Ward, clock: FakeClock
) -> None:
    await start_session(clinic, ward)
    async with clinic.bus.subscribe(types={EventType.ALERT}) as pager:
        await cuff_reading(clinic, clock, 132, 84)  # a normal reading: no alert
        clinic.publish_cuff_pressure("C0:FF:EE:00:00:01", 142.0, clock())
        queued = pager.queue.qsize()
    assert queued == 0


async def test_resuming_from_a_recent_seq_replays_from_memory_in_order(
    clinic: Clinic, ward: Ward, clock: FakeClock
) -> None:
    await start_session(clinic, ward)
    first = await clinic.bus.last_seq()
    for systolic in (120, 125, 130):
        clock.advance(minutes=1)
        await cuff_reading(clinic, clock, systolic, 80)
    last = await clinic.bus.last_seq()
    recent = clinic.bus.recent_after(first)
    stored = await clinic.bus.stored_after(first)
    assert recent is not None
    assert [(e.seq, e.type, e.data) for e in recent] == [(e.seq, e.type, e.data) for e in stored]
    assert [e.seq for e in recent] == list(range(first + 1, last + 1))


async def storm(server: str, tokens: TokenIssuer, clock: FakeClock) -> list[dict[str, Any]]:
    """`STORM_PER_ROLE` clients per role connecting at once; each one's first message."""

    async def one(role: Role) -> dict[str, Any]:
        url = f"ws://{server}/ws?token={token_for(tokens, clock, role)}"
        async with connect(url, open_timeout=60) as websocket:
            first: dict[str, Any] = json.loads(await recv_text(websocket))
            return first

    readers = [role for role in Role for _ in range(STORM_PER_ROLE)]
    return await asyncio.gather(*(one(role) for role in readers))


@pytest.fixture
async def storm_app(
    tmp_path: Path,
    database_template: Path,
    tokens: TokenIssuer,
    passwords: PasswordHasher,
    clock: FakeClock,
) -> AsyncIterator[FastAPI]:
    clinic = await open_clinic(database_template, tmp_path, clock=clock)
    try:
        yield create_app(
            clinic,
            Settings(data_dir=tmp_path),
            tokens=tokens,
            passwords=passwords,
            clock=clock,
            handshake=FOREVER,
        )
    finally:
        await clinic.close()


async def test_a_connect_storm_computes_one_snapshot(
    storm_app: FastAPI, tokens: TokenIssuer, clock: FakeClock
) -> None:
    async with serving(storm_app) as address:
        firsts = await storm(address, tokens, clock)
    assert {m["type"] for m in firsts} == {"snapshot"}
    assert storm_app.state.context.snapshots.computed == 1


async def test_a_connect_storm_looks_each_user_up_once(
    storm_app: FastAPI, tokens: TokenIssuer, clock: FakeClock
) -> None:
    async with serving(storm_app) as address:
        await storm(address, tokens, clock)
    assert storm_app.state.context.accounts.lookups == len(Role)


async def test_a_connect_storm_holds_at_most_the_bound_of_database_connections(
    storm_app: FastAPI, tokens: TokenIssuer, clock: FakeClock
) -> None:
    engine = storm_app.state.context.clinic.engine.sync_engine
    held = {"now": 0, "most": 0}

    def checked_out(*_: object) -> None:
        held["now"] += 1
        held["most"] = max(held["most"], held["now"])

    def checked_in(*_: object) -> None:
        held["now"] -= 1

    event.listen(engine, "checkout", checked_out)
    event.listen(engine, "checkin", checked_in)
    try:
        async with serving(storm_app) as address:
            firsts = await storm(address, tokens, clock)
    finally:
        event.remove(engine, "checkout", checked_out)
        event.remove(engine, "checkin", checked_in)
    assert len(firsts) == STORM_PER_ROLE * len(Role)
    assert held["most"] <= HandshakeLimits().db_work


async def test_disabling_a_user_closes_their_open_stream_with_1008(
    app: FastAPI, tokens: TokenIssuer, clock: FakeClock
) -> None:
    nurse = token_for(tokens, clock, Role.NURSE)
    admin = {"Authorization": f"Bearer {token_for(tokens, clock, Role.ADMIN)}"}
    async with serving(app) as address:
        async with connect(f"ws://{address}/ws?token={nurse}") as websocket:
            await recv_text(websocket)
            async with httpx.AsyncClient(base_url=f"http://{address}") as http:
                disabled = await http.post("/api/users/nurse/disable", headers=admin)
            with pytest.raises(ConnectionClosed) as closed:
                await recv_text(websocket)
    assert disabled.status_code == 200
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    assert "disabled" in closed.value.rcvd.reason


async def test_a_disabled_user_is_refused_a_stream_at_once_though_looked_up_before(
    app: FastAPI, tokens: TokenIssuer, clock: FakeClock
) -> None:
    nurse = token_for(tokens, clock, Role.NURSE)
    admin = {"Authorization": f"Bearer {token_for(tokens, clock, Role.ADMIN)}"}
    async with serving(app) as address:
        async with connect(f"ws://{address}/ws?token={nurse}") as websocket:
            await recv_text(websocket)  # the account is now in the cache
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            await http.post("/api/users/nurse/disable", headers=admin)
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"ws://{address}/ws?token={nurse}"):
                pass
    assert refused.value.response.status_code == 401
    assert b"disabled" in refused.value.response.body


async def test_a_user_disabled_outside_this_api_loses_the_stream_at_the_recheck(
    tmp_path: Path,
    database_template: Path,
    tokens: TokenIssuer,
    passwords: PasswordHasher,
    clock: FakeClock,
) -> None:
    """As the CLI or another daemon would: straight through the clinic, not our route."""
    clinic = await open_clinic(database_template, tmp_path, clock=clock)
    app = create_app(
        clinic,
        Settings(data_dir=tmp_path),
        tokens=tokens,
        passwords=passwords,
        clock=clock,
        handshake=HandshakeLimits(account_ttl_s=0.0, recheck_s=0.2),
    )
    nurse = token_for(tokens, clock, Role.NURSE)
    try:
        async with serving(app) as address:
            async with connect(f"ws://{address}/ws?token={nurse}") as websocket:
                await recv_text(websocket)
                await clinic.set_user_disabled("nurse", True, by=ADMIN)
                with pytest.raises(ConnectionClosed) as closed:
                    await recv_text(websocket)
    finally:
        await clinic.close()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    assert "disabled" in closed.value.rcvd.reason


async def test_a_client_resuming_after_a_restart_is_replayed_from_the_log(
    tmp_path: Path,
    database_template: Path,
    tokens: TokenIssuer,
    passwords: PasswordHasher,
    clock: FakeClock,
    ward: Ward,
    clinic: Clinic,
) -> None:
    """The restarted daemon's bus remembers nothing: the replay comes from the table."""
    await start_session(clinic, ward)
    await cuff_reading(clinic, clock, 186, 114)
    stored = [e.seq for e in await clinic.bus.stored_after(0)]
    last = await clinic.bus.last_seq()
    restarted = Clinic(clinic.engine, clock=clock)
    app = create_app(
        restarted, Settings(data_dir=tmp_path), tokens=tokens, passwords=passwords, clock=clock
    )
    url_token = token_for(tokens, clock, Role.NURSE)
    async with serving(app) as address:
        async with connect(f"ws://{address}/ws?token={url_token}&since=0") as websocket:
            await recv_text(websocket)  # the snapshot
            texts = await texts_until(websocket, last)
    assert restarted.bus.recent_after(0) is None
    assert [json.loads(t)["seq"] for t in texts] == stored

"""A silent cuff through the whole daemon (issue #15, `cuff_offline`): a simulated cuff
of a chair in session goes out of range over a Bumble virtual link and nothing is heard
from it for `cuff_silent_after_minutes`; it comes back and the alert clears."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date
from pathlib import Path

import pytest
from bumble.link import LocalLink

from devices.bumble_backend import BumbleHost
from simulators.clock import SimClock
from simulators.cuff import CuffConfig, SimulatedCuff
from vitalsd.clinic import Actor, Clinic
from vitalsd.daemon import Daemon
from vitalsd.domain import Role
from vitalsd.settings import Settings
from vitalsd.views import AlertView

CUFF = "D0:11:22:33:44:15"
CENTRAL = "C0:11:22:33:44:15"
# Simulated seconds per real second: the 20 silent minutes pass in 4 s.
SPEED = 300.0
# A guard against a hang, never a timing assertion.
PATIENCE_S = 60.0
STAFF = Actor("setup", Role.ADMIN)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, port=0, cuff_silent_after_minutes=20)


@pytest.fixture
def clock() -> SimClock:
    return SimClock(SPEED)


@pytest.fixture
async def clinic(settings: Settings, clock: SimClock) -> AsyncIterator[Clinic]:
    service = await Clinic.open(settings, clock=clock.now)
    yield service
    await service.close()


async def cuff_offline(clinic: Clinic, session_id: int, state: str) -> AlertView:
    """The session's cuff_offline alert once it is in `state`. The timers sleep real
    seconds toward deadlines set in simulated time, so the poll wakes them as it looks."""
    while True:
        for alert in await clinic.list_alerts(session_id=session_id, kind="cuff_offline"):
            if alert.state == state:
                return alert
        clinic.wake()
        await asyncio.sleep(0.05)


async def test_a_cuff_out_of_range_for_the_set_time_raises_cuff_offline_until_it_is_back(
    settings: Settings, clinic: Clinic, clock: SimClock
) -> None:
    link = LocalLink()  # type: ignore[no-untyped-call]
    patient = await clinic.create_patient("MRN-15", "Kim Poe", date(1979, 9, 9), by=STAFF)
    chair = await clinic.create_chair("Chair 1", by=STAFF)
    await clinic.assign_cuff(chair.id, CUFF, by=STAFF)
    session = await clinic.start_session(patient.id, chair.id, by=Actor("dr", Role.CLINICIAN))
    cuff = SimulatedCuff(CuffConfig(address=CUFF), clock=clock, link=link)
    await cuff.start()
    central = await BumbleHost.on_link(link, address=CENTRAL)
    daemon = Daemon(settings, clinic, ble=central, clock=clock.now, zone=UTC)
    running = asyncio.create_task(daemon.run())
    try:
        async with asyncio.timeout(PATIENCE_S):
            await cuff.wait_for(lambda c: c.connected)
            await cuff.go_out_of_range()
            raised = await cuff_offline(clinic, session.id, "active")
            assert (raised.priority, raised.chair_id) == ("medium", chair.id)
            assert CUFF in raised.message and "nothing heard" in raised.message
            await cuff.come_back()
            resolved = await cuff_offline(clinic, session.id, "resolved")
    finally:
        daemon.stop()
        await running
        await cuff.stop()
        await central.close()
    assert resolved.id == raised.id
    assert len(await clinic.list_alerts(session_id=session.id, kind="cuff_offline")) == 1

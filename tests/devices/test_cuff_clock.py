"""Issue #13 finding 4, replayed through a simulated cuff on a Bumble virtual link: a cuff
with no Current Time service whose clock is off. Real parts throughout: `CuffLink`, the
daemon's `CuffEventSink` and a real `Clinic` on SQLite (DESIGN.md "Safety rules": "Time").
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, timedelta
from pathlib import Path

import pytest
from bleak import BleakScanner

from devices.bumble_backend import BumbleHost
from devices.events import CuffEvent, MeasurementReceived
from devices.link import CuffLink, CuffMemory
from devices.transport import BleStack
from simulators.clock import SimClock
from simulators.cuff import SimulatedCuff
from tests.devices.conftest import PATIENCE, StartCuff, within_patience
from vitalsd.clinic import Actor, Clinic
from vitalsd.daemon import BleStatus, CuffEventSink
from vitalsd.domain import Role
from vitalsd.settings import Settings

CLINICIAN = Actor("dr.lee", Role.CLINICIAN)


@pytest.fixture
async def clinic(tmp_path: Path, clock: SimClock) -> AsyncIterator[Clinic]:
    service = await Clinic.open(Settings(data_dir=tmp_path / "clinic"), clock=clock.now)
    yield service
    await service.close()


class Received:
    """The daemon's sink, keeping the readings the link handed over."""

    def __init__(self, clinic: Clinic) -> None:
        self.sink = CuffEventSink(clinic, BleStatus("bumble"))
        self.readings: list[MeasurementReceived] = []
        self.stored = asyncio.Event()

    async def __call__(self, event: CuffEvent) -> None:
        await self.sink(event)
        if isinstance(event, MeasurementReceived):
            self.readings.append(event)
            self.stored.set()


async def follow(
    central: BumbleHost, cuff: SimulatedCuff, received: Received, clock: SimClock
) -> asyncio.Task[str]:
    """Connect the daemon's link to the cuff and wait until it follows it live."""
    device = await BleakScanner.find_device_by_address(
        cuff.address, timeout=PATIENCE, **central.scanner_kwargs()
    )
    assert device is not None, f"{cuff.address} not seen advertising"
    link = CuffLink(
        device,
        BleStack.from_host(central),
        publish=received,
        memory=CuffMemory(cuff.address),
        clock=clock.now,
        zone=UTC,  # the simulated cuffs keep UTC
    )
    run = asyncio.create_task(link.run())
    await within_patience(cuff.wait_for(lambda c: c.following_live))
    return run


async def ward_with_previous_patient(clinic: Clinic, cuff: SimulatedCuff) -> tuple[int, int]:
    """Chair 7 with the cuff: the previous patient's session, begun 5 hours ago, closed 2
    minutes ago; then the next patient's session opened. Returns both session ids."""
    now = clinic.now()
    chair = await clinic.create_chair("Chair 7", by=CLINICIAN)
    await clinic.assign_cuff(chair.id, cuff.address, by=CLINICIAN)
    first = await clinic.create_patient("P-1", "Previous Patient", date(1970, 1, 1), by=CLINICIAN)
    second = await clinic.create_patient("P-2", "Next Patient", date(1971, 1, 1), by=CLINICIAN)
    previous = await clinic.start_session(
        first.id, chair.id, by=CLINICIAN, started_at=now - timedelta(hours=5)
    )
    await clinic.close_session(
        previous.id, by=CLINICIAN, reason="went home", at=clinic.now() - timedelta(minutes=2)
    )
    current = await clinic.start_session(second.id, chair.id, by=CLINICIAN)
    return previous.id, current.id


@pytest.mark.parametrize(
    "clock_off",
    [
        pytest.param(-timedelta(hours=3), id="slow"),
        pytest.param(timedelta(hours=3), id="fast"),
    ],
)
async def test_finding_4_a_live_reading_off_clock_is_filed_at_receipt_in_the_open_session(
    start_cuff: StartCuff,
    central: BumbleHost,
    clock: SimClock,
    clinic: Clinic,
    clock_off: timedelta,
) -> None:
    """Finding 4: a cuff with no Current Time service, its clock hours off (its stamp
    falls inside the previous patient's closed session when slow, in the future when
    fast). The live reading is stored at the receive time in the chair's open session,
    keeps the cuff's stamp (its cuff key and raw frame), is flagged `cuff_clock_off`, and
    the cuff gets a low `cuff_clock_off` alert on its chair."""
    cuff = await start_cuff(record_style="bps10", current_time_service=False)
    previous_id, current_id = await ward_with_previous_patient(clinic, cuff)
    received = Received(clinic)
    run = await follow(central, cuff, received, clock)
    try:
        cuff.clock_offset = clock_off
        record = await cuff.measure()
        await within_patience(received.stored.wait())
    finally:
        run.cancel()
        await asyncio.wait([run])
    (event,) = received.readings
    assert event.live
    assert abs(event.measured_at - event.received_at - clock_off) < timedelta(minutes=1)
    (reading,) = await clinic.list_readings(device_address=cuff.address)
    assert reading.session_id == current_id != previous_id
    assert reading.measured_at == event.received_at
    assert "cuff_clock_off" in reading.flags
    assert reading.systolic == record.measurement.systolic
    assert await clinic.list_readings(session_id=previous_id) == []
    (alert,) = await clinic.list_alerts(kind="cuff_clock_off")
    assert (alert.priority, alert.state, alert.session_id) == ("low", "active", None)
    assert alert.chair_id == reading.chair_id is not None
    assert "set its clock" in alert.message
    assert record.cuff_time.isoformat(timespec="seconds") in alert.message


async def test_finding_4_off_clock_with_no_open_session_is_never_the_previous_patients(
    start_cuff: StartCuff, central: BumbleHost, clock: SimClock, clinic: Clinic
) -> None:
    """Finding 4: the same slow cuff after the chair's session closed: the reading is kept
    unattached (never in the closed session its stamp falls in), and alerts."""
    cuff = await start_cuff(record_style="bps10", current_time_service=False)
    _previous_id, current_id = await ward_with_previous_patient(clinic, cuff)
    await clinic.close_session(current_id, by=CLINICIAN, reason="went home")
    received = Received(clinic)
    run = await follow(central, cuff, received, clock)
    try:
        cuff.clock_offset = -timedelta(hours=3)
        await cuff.measure()
        await within_patience(received.stored.wait())
    finally:
        run.cancel()
        await asyncio.wait([run])
    (reading,) = await clinic.list_readings(device_address=cuff.address)
    assert reading.session_id is None
    assert "cuff_clock_off" in reading.flags
    (alert,) = await clinic.list_alerts(kind="cuff_clock_off")
    assert alert.state == "active"


async def test_finding_4_a_record_from_a_cuff_whose_clock_was_never_read_joins_no_closed_session(
    start_cuff: StartCuff, central: BumbleHost, clock: SimClock, clinic: Clinic
) -> None:
    """Finding 4, stored records: a BPS 1.0 replay (no inflation on this connection) from
    a cuff whose clock nobody can read cannot be placed in time: it joins only the
    chair's open session, never the previous patient's closed one its stamp falls in."""
    cuff = await start_cuff(record_style="bps10", current_time_service=False)
    previous_id, _current_id = await ward_with_previous_patient(clinic, cuff)
    cuff.clock_offset = -timedelta(hours=3)
    await cuff.go_out_of_range()
    await cuff.measure()  # stored, replayed when the daemon subscribes
    await cuff.come_back()
    received = Received(clinic)
    run = await follow(central, cuff, received, clock)
    try:
        await within_patience(received.stored.wait())
    finally:
        run.cancel()
        await asyncio.wait([run])
    (event,) = received.readings
    assert not event.live and not event.clock_checked
    (reading,) = await clinic.list_readings(device_address=cuff.address)
    assert reading.session_id != previous_id
    assert reading.session_id is None


async def test_a_cuff_clock_alert_raised_before_a_restart_clears_when_the_clock_agrees(
    start_cuff: StartCuff, central: BumbleHost, clock: SimClock, tmp_path: Path
) -> None:
    """The daemon restarts between the off-clock reading and the next one (or another
    node took the cuff over): the next live reading within the tolerance still clears the
    open `cuff_clock_off` alert that the earlier process raised."""
    settings = Settings(data_dir=tmp_path / "clinic")
    cuff = await start_cuff(record_style="bps10", current_time_service=False)
    before = await Clinic.open(settings, clock=clock.now)
    try:
        await ward_with_previous_patient(before, cuff)
        received = Received(before)
        run = await follow(central, cuff, received, clock)
        try:
            cuff.clock_offset = timedelta(hours=3)
            await cuff.measure()
            await within_patience(received.stored.wait())
        finally:
            run.cancel()
            await asyncio.wait([run])
        (raised,) = await before.list_alerts(kind="cuff_clock_off")
        assert raised.state == "active"
    finally:
        await before.close()

    after = await Clinic.open(settings, clock=clock.now)
    try:
        received = Received(after)
        run = await follow(central, cuff, received, clock)
        try:
            cuff.clock_offset = timedelta(0)
            await cuff.measure()
            await within_patience(received.stored.wait())
        finally:
            run.cancel()
            await asyncio.wait([run])
        (event,) = received.readings
        assert event.live
        (alert,) = await after.list_alerts(kind="cuff_clock_off")
        assert (alert.id, alert.state) == (raised.id, "resolved")
    finally:
        await after.close()

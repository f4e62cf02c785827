"""The measurement inbox (`devices.inbox`): a reading a BPS 1.0 cuff was told we have (and
so deleted) survives a daemon that died before the clinic committed it, and is stored
once. Real parts throughout: a simulated cuff on a Bumble virtual link, `CuffLink`, the
daemon's `CuffEventSink` and a real `Clinic` on SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from bleak import BleakScanner

from devices.bps import BloodPressureMeasurement, PressureUnit
from devices.bumble_backend import BumbleHost
from devices.events import CuffEvent, CuffIdentity, MeasurementReceived
from devices.inbox import MeasurementInbox, replay
from devices.link import ClockObservation, CuffLink, CuffMemory, ReadingContext, reading_event
from devices.transport import BleStack
from simulators.clock import SimClock
from simulators.cuff import SimulatedCuff
from tests.devices.conftest import PATIENCE, EventLog, StartCuff, Supervise, within_patience
from vitalsd.clinic import Clinic
from vitalsd.daemon import BleStatus, CuffEventSink
from vitalsd.settings import Settings

Publish = Callable[[CuffEvent], Awaitable[None]]


@pytest.fixture
async def clinic(tmp_path: Path, clock: SimClock) -> AsyncIterator[Clinic]:
    service = await Clinic.open(Settings(data_dir=tmp_path / "clinic"), clock=clock.now)
    yield service
    await service.close()


@pytest.fixture
def sink(clinic: Clinic) -> CuffEventSink:
    return CuffEventSink(clinic, BleStatus("bumble"))


@pytest.fixture
def inbox_path(tmp_path: Path) -> Path:
    return tmp_path / "daemon" / "cuff-inbox.sqlite3"


async def start_link(
    central: BumbleHost,
    cuff: SimulatedCuff,
    publish: Publish,
    inbox: MeasurementInbox,
    clock: SimClock,
) -> asyncio.Task[str]:
    device = await BleakScanner.find_device_by_address(
        cuff.address, timeout=PATIENCE, **central.scanner_kwargs()
    )
    assert device is not None, f"{cuff.address} not seen advertising"
    link = CuffLink(
        device,
        BleStack.from_host(central),
        publish=publish,
        memory=CuffMemory(cuff.address),
        clock=clock.now,
        zone=UTC,
        inbox=inbox,
    )
    return asyncio.create_task(link.run())


async def killed(run: asyncio.Task[str], inbox: MeasurementInbox) -> None:
    """The daemon dies: its link is abandoned mid-delivery and its inbox file closed."""
    run.cancel()
    await asyncio.wait([run])
    inbox.close()


async def stored_systolics(clinic: Clinic, cuff: SimulatedCuff) -> list[float | None]:
    return [r.systolic for r in await clinic.list_readings(device_address=cuff.address)]


async def test_a_reading_confirmed_but_not_committed_is_stored_once_after_a_restart(
    start_cuff: StartCuff,
    central: BumbleHost,
    clock: SimClock,
    clinic: Clinic,
    sink: CuffEventSink,
    inbox_path: Path,
) -> None:
    cuff = await start_cuff(record_style="bps10")
    handed_over = asyncio.Event()

    async def dies_before_commit(event: CuffEvent) -> None:
        if isinstance(event, MeasurementReceived):
            handed_over.set()
            await asyncio.Event().wait()  # the daemon is killed here
        await sink(event)

    inbox = MeasurementInbox(inbox_path)
    run = await start_link(central, cuff, dies_before_commit, inbox, clock)
    reading = await cuff.measure()
    await within_patience(handed_over.wait())
    await within_patience(cuff.wait_for(lambda c: not c.stored))  # confirmed: deleted
    await killed(run, inbox)

    with MeasurementInbox(inbox_path) as restarted:
        assert await replay(restarted, sink) == 1
        assert len(restarted) == 0
    assert await stored_systolics(clinic, cuff) == [reading.measurement.systolic]


async def test_a_reading_committed_but_not_released_is_stored_once_after_a_restart(
    start_cuff: StartCuff,
    central: BumbleHost,
    clock: SimClock,
    clinic: Clinic,
    sink: CuffEventSink,
    inbox_path: Path,
) -> None:
    cuff = await start_cuff(record_style="bps10")
    committed = asyncio.Event()

    async def dies_after_commit(event: CuffEvent) -> None:
        await sink(event)
        if isinstance(event, MeasurementReceived):
            committed.set()
            await asyncio.Event().wait()  # killed before the inbox hears of it

    inbox = MeasurementInbox(inbox_path)
    run = await start_link(central, cuff, dies_after_commit, inbox, clock)
    reading = await cuff.measure()
    await within_patience(committed.wait())
    await killed(run, inbox)

    with MeasurementInbox(inbox_path) as restarted:
        assert len(restarted) == 1
        await replay(restarted, sink)
    assert await stored_systolics(clinic, cuff) == [reading.measurement.systolic]


async def test_a_reading_the_clinic_took_is_released_from_the_inbox(
    start_cuff: StartCuff,
    central: BumbleHost,
    clock: SimClock,
    clinic: Clinic,
    sink: CuffEventSink,
    inbox_path: Path,
) -> None:
    cuff = await start_cuff(record_style="bps10")
    inbox = MeasurementInbox(inbox_path)
    run = await start_link(central, cuff, sink, inbox, clock)
    try:
        reading = await cuff.measure()
        await within_patience(cuff.wait_for(lambda c: not c.stored))
        async with asyncio.timeout(PATIENCE):
            while len(inbox) or not await stored_systolics(clinic, cuff):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
    finally:
        await killed(run, inbox)
    assert await stored_systolics(clinic, cuff) == [reading.measurement.systolic]


async def test_records_stamped_before_a_killed_daemon_set_the_clock_get_their_true_time(
    start_cuff: StartCuff, events: EventLog, supervise: Supervise, inbox_path: Path
) -> None:
    """A BPS 1.1 cuff keeps its records; the first daemon set its clock (reset to 2020)
    but died before storing them. The next one finds the clock right, and corrects the
    2020 stamps by the offset the first one saw (remembered in the inbox's file)."""
    cuff = await start_cuff(record_style="bps11")
    await cuff.go_out_of_range()
    stored = [await cuff.measure() for _ in range(2)]
    await cuff.come_back()
    refused = asyncio.Event()

    async def database_down(event: CuffEvent) -> None:
        if isinstance(event, MeasurementReceived):
            refused.set()
            raise ConnectionError("the database is down")

    with MeasurementInbox(inbox_path) as inbox:
        async with supervise(on_event=database_down, inbox=inbox):
            await within_patience(refused.wait())
    assert cuff.clock_set
    with MeasurementInbox(inbox_path) as restarted:
        async with supervise(inbox=restarted):
            await events.wait_for(lambda: events.all_delivered(cuff, stored), "the records")
    for record, event in zip(stored, events.readings(cuff.address), strict=True):
        assert record.cuff_time.year == 2020
        assert abs(event.measured_at - record.taken_at) < timedelta(seconds=30)


def test_a_held_frame_becomes_the_event_the_link_would_have_published(
    inbox_path: Path,
) -> None:
    """Identity, zone, clock observations and clock-set time all come back, so the
    replayed reading has the same corrected time and the same cuff key."""
    zone = ZoneInfo("Europe/Berlin")
    observed_at = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
    context = ReadingContext(
        CuffIdentity("D0:00:00:00:00:01", "SIM-BP 1", "Simulated", "SIM-BP", "SIM-0001", "1.0"),
        zone,
        ClockObservation(datetime(2025, 3, 14, 8, 0, 0), observed_at, zone),
        observed_at + timedelta(seconds=1),
        (ClockObservation(datetime(2020, 1, 1, 0, 30), observed_at - timedelta(days=1), zone),),
    )
    measurement = BloodPressureMeasurement(
        PressureUnit.MMHG, 131.0, 84.0, 99.0, datetime(2025, 3, 14, 7, 45), 70.0, 1
    )
    raw = bytes(measurement)
    received_at = observed_at + timedelta(seconds=2)
    with MeasurementInbox(inbox_path) as inbox:
        inbox.hold(raw, received_at, context)
        [held] = inbox.held()
    expected, _key = reading_event(context, raw, received_at)
    assert held.event() == expected

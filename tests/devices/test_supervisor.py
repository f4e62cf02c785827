"""The supervisor against the simulator's cuffs, over Bumble virtual controllers."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import timedelta

from devices.bumble_backend import BumbleHost
from devices.events import (
    BatteryChanged,
    CuffBonded,
    CuffConnected,
    CuffDisconnected,
    CuffPressureChanged,
    CuffSeen,
    MeasurementFailed,
    MeasurementReceived,
)
from simulators.clock import SimClock
from simulators.cuff import SimulatedCuff
from simulators.physiology import MeasurementProblem
from tests.devices.conftest import (
    CENTRAL_ADDRESS,
    EventLog,
    StartCuff,
    StartFleet,
    Supervise,
    within_patience,
)


async def test_six_cuffs_each_deliver_their_readings(
    start_fleet: StartFleet, events: EventLog, supervise: Supervise
) -> None:
    """The clinic mix: BPS 1.0 and 1.1, brief windows, a BM85, motion flags, a flaky link."""
    cuffs = await start_fleet("clinic", count=6, seed=7)
    async with supervise():

        def three_each() -> bool:
            return all(
                len(c.measurement_log) >= 3 and events.all_delivered(c, c.measurement_log[:3])
                for c in cuffs
            )

        await events.wait_for(three_each, "three readings from each of six cuffs")
    for cuff in cuffs:
        assert events.of(CuffConnected, cuff.address)


# Out of range for 1-6 simulated minutes after 2-10 in range, nine times per cuff.
DROPS_PER_CUFF = 9


async def test_flaky_link_delivers_every_reading_exactly_once(
    start_fleet: StartFleet, clock: SimClock, events: EventLog, supervise: Supervise
) -> None:
    """54 random out-of-range drops; BPS 1.1 (RACP) and 1.0 (replay) cuffs alternate."""
    cuffs = await start_fleet("flaky-link", count=6, seed=3, flaky_link=None)
    rng = random.Random(3)
    drops = 0

    async def wander(cuff: SimulatedCuff) -> None:
        nonlocal drops
        for _ in range(DROPS_PER_CUFF):
            await clock.sleep(timedelta(minutes=rng.uniform(2, 10)))
            await cuff.go_out_of_range()
            drops += 1
            await clock.sleep(timedelta(minutes=rng.uniform(1, 6)))
            await cuff.come_back()

    async with supervise():
        await asyncio.gather(*(wander(c) for c in cuffs))
        taken = {c.address: list(c.measurement_log) for c in cuffs}
        await events.wait_for(
            lambda: all(events.all_delivered(c, taken[c.address]) for c in cuffs),
            "every reading taken during the drops",
        )
    assert drops >= 50
    assert len(events.of(CuffDisconnected)) >= 10  # drops that cut a live link
    assert {c.config.record_style for c in cuffs} == {"bps10", "bps11"}
    for cuff in cuffs:
        for record in cuff.measurement_log:
            assert events.delivered(cuff, record) <= 1, f"{cuff.name} seq {record.sequence_number}"
        assert all(events.delivered(cuff, r) == 1 for r in taken[cuff.address])
    keys = Counter(
        (e.cuff.address, e.measurement.user_id, e.measurement.timestamp)
        for e in events.of(MeasurementReceived)
    )
    assert max(keys.values()) == 1


async def test_a_vanished_cuff_does_not_stall_the_others(
    start_cuff: StartCuff, events: EventLog, supervise: Supervise
) -> None:
    steady = await start_cuff()
    vanishing = await start_cuff()
    async with supervise():
        await events.wait_for(
            lambda: (
                bool(events.of(CuffConnected, steady.address))
                and bool(events.of(CuffConnected, vanishing.address))
            ),
            "both cuffs connected",
        )
        await vanishing.go_out_of_range()
        await vanishing.measure()  # stored, never delivered: the cuff is gone
        readings = [await steady.measure() for _ in range(3)]
        await events.wait_for(
            lambda: events.all_delivered(steady, readings), "the steady cuff's readings"
        )
    assert events.readings(vanishing.address) == []


async def test_a_cuff_that_advertises_briefly_is_caught(
    start_cuff: StartCuff, clock: SimClock, events: EventLog, supervise: Supervise
) -> None:
    # A one-second window in real time (DESIGN.md: such cuffs give us about a second).
    window = timedelta(seconds=clock.speed)
    async with supervise():
        cuff = await start_cuff(connectable="brief", advertising_window=window, linger=window)
        await events.wait_for(lambda: bool(events.of(CuffDisconnected, cuff.address)), "hang-up")
        reading = await cuff.measure()  # stored; the cuff advertises for one window
        await events.wait_for(lambda: events.delivered(cuff, reading) == 1, "the brief reading")


async def test_an_error_frame_becomes_a_measurement_failed_event(
    start_cuff: StartCuff, events: EventLog, supervise: Supervise
) -> None:
    cuff = await start_cuff()
    async with supervise():
        await events.wait_for(lambda: bool(events.of(CuffConnected, cuff.address)), "connection")
        failed = await cuff.measure(MeasurementProblem.ERROR_FRAME)
        good = await cuff.measure()
        await events.wait_for(lambda: events.delivered(cuff, good) == 1, "the good reading")
    assert [e.raw for e in events.of(MeasurementFailed, cuff.address)] == [failed.payload]
    assert [e.raw for e in events.readings(cuff.address)] == [good.payload]


async def test_first_contact_bonds_and_publishes_it(
    start_cuff: StartCuff, events: EventLog, supervise: Supervise
) -> None:
    cuff = await start_cuff()
    async with supervise():
        await events.wait_for(lambda: bool(events.of(CuffBonded, cuff.address)), "the bond")
    assert cuff.pairings == [CENTRAL_ADDRESS]


async def test_reconnection_reuses_the_bond_without_pairing_again(
    start_cuff: StartCuff, events: EventLog, supervise: Supervise
) -> None:
    cuff = await start_cuff()
    async with supervise():
        await events.wait_for(lambda: bool(events.of(CuffBonded, cuff.address)), "the bond")
        await cuff.go_out_of_range()
        await cuff.come_back()
        await events.wait_for(lambda: len(events.of(CuffBonded, cuff.address)) == 2, "re-bond")
        reading = await cuff.measure()
        await events.wait_for(lambda: events.delivered(cuff, reading) == 1, "a reading")
    assert cuff.pairings == [CENTRAL_ADDRESS]


async def test_a_cuff_that_requires_encryption_is_paired_on_demand(
    start_cuff: StartCuff, events: EventLog, supervise: Supervise
) -> None:
    """Without bonding up front, the refused subscription makes the backend pair."""
    cuff = await start_cuff(security="just-works")
    async with supervise(bond=False):
        await events.wait_for(lambda: bool(events.of(CuffConnected, cuff.address)), "connection")
        reading = await cuff.measure()
        await events.wait_for(lambda: events.delivered(cuff, reading) == 1, "a reading")
    assert cuff.pairings == [CENTRAL_ADDRESS]
    assert events.of(CuffBonded) == []


async def test_the_cuffs_clock_is_set(
    start_cuff: StartCuff, clock: SimClock, events: EventLog, supervise: Supervise
) -> None:
    cuff = await start_cuff()  # its clock was reset to 2020 by a battery change
    async with supervise():
        reading = await cuff.measure()
        # Delivered: the link is set up, and the clock is set before it subscribes.
        await events.wait_for(lambda: events.delivered(cuff, reading) == 1, "a reading")
        shown = cuff.cuff_clock(clock.now())
        now = clock.now().replace(tzinfo=None)
    assert cuff.clock_set
    # To the second, give or take the simulated seconds a few real milliseconds make.
    assert abs(shown - now) < timedelta(seconds=30)


async def test_readings_stored_under_a_wrong_clock_get_their_true_time(
    start_cuff: StartCuff, events: EventLog, supervise: Supervise
) -> None:
    cuff = await start_cuff()  # its clock was reset to 2020 by a battery change
    await cuff.go_out_of_range()
    stored = [await cuff.measure() for _ in range(3)]
    await cuff.come_back()
    async with supervise():
        await events.wait_for(lambda: events.all_delivered(cuff, stored), "the stored readings")
    for record, event in zip(stored, events.readings(cuff.address), strict=True):
        assert record.cuff_time.year == 2020
        assert abs(event.measured_at - record.taken_at) < timedelta(seconds=30)


async def test_beurer_bm85_readings_decode_to_what_the_cuff_measured(
    start_fleet: StartFleet, events: EventLog, supervise: Supervise
) -> None:
    [cuff] = await start_fleet("beurer-bm85", count=1, seed=5)
    async with supervise():
        await events.wait_for(
            lambda: (
                len(cuff.measurement_log) >= 2
                and events.all_delivered(cuff, cuff.measurement_log[:2])
            ),
            "two BM85 readings",
        )
    for record, event in zip(cuff.measurement_log, events.readings(cuff.address), strict=False):
        assert event.measurement == record.measurement
        assert event.cuff.model == "BM85"


async def test_cuff_pressure_and_battery_are_published(
    start_cuff: StartCuff, events: EventLog, supervise: Supervise
) -> None:
    cuff = await start_cuff()
    async with supervise():
        first = await cuff.measure()
        # Delivered: we have subscribed to everything, Intermediate Cuff Pressure first.
        await events.wait_for(lambda: events.delivered(cuff, first) == 1, "a first reading")
        reading = await cuff.measure()
        await events.wait_for(lambda: events.delivered(cuff, reading) == 1, "a second reading")
    pressures = [e.pressure_mmhg for e in events.of(CuffPressureChanged, cuff.address)]
    assert max(pressures) > reading.reading.systolic
    assert events.of(BatteryChanged, cuff.address)[0].level == cuff.config.battery_level


async def test_undiscovered_cuffs_are_ignored_unless_known(
    start_cuff: StartCuff, events: EventLog, supervise: Supervise
) -> None:
    known = await start_cuff()
    stranger = await start_cuff()
    async with supervise(discover=False, known_addresses=[known.address]):
        await events.wait_for(lambda: bool(events.of(CuffConnected, known.address)), "connection")
        reading = await known.measure()
        await events.wait_for(lambda: events.delivered(known, reading) == 1, "a reading")
    assert events.of(CuffSeen, stranger.address) == []
    assert events.of(CuffConnected, stranger.address) == []


async def test_a_forgotten_cuff_is_disconnected_and_not_rediscovered(
    start_cuff: StartCuff, events: EventLog, supervise: Supervise
) -> None:
    cuff = await start_cuff()
    async with supervise() as supervisor:
        await events.wait_for(lambda: bool(events.of(CuffConnected, cuff.address)), "connection")
        supervisor.forget_cuff(cuff.address)
        await within_patience(cuff.wait_for(lambda c: not c.connected))
        await cuff.measure()
        assert supervisor.cuffs == []
    assert events.readings(cuff.address) == []


async def test_cancelling_the_supervisor_closes_every_link(
    start_cuff: StartCuff, events: EventLog, supervise: Supervise, central: BumbleHost
) -> None:
    cuffs = [await start_cuff(), await start_cuff()]
    async with supervise():
        await events.wait_for(
            lambda: all(events.of(CuffConnected, c.address) for c in cuffs), "both connected"
        )
    assert not any(c.connected for c in cuffs)
    assert central.device.connections == {}


def silent_and_free(cuff: SimulatedCuff) -> bool:
    return not cuff.advertising and not cuff.connected


async def test_cuffs_with_short_advertising_windows_are_caught_every_time(
    start_fleet: StartFleet, events: EventLog, supervise: Supervise
) -> None:
    """Issue #18: cuffs that advertise only 1-3 real seconds after a measurement, then
    fall silent (scenario `short-windows`, BPS 1.0 and 1.1). After each window closes the
    cuff's reading must already be delivered: a window missed is a reading held until
    the next measurement, minutes later on a real cuff."""
    cuffs = await start_fleet(
        "short-windows", count=4, seed=18, measurement_interval=None, dose_after=None
    )
    async with supervise():
        for _ in range(4):
            for cuff in cuffs:
                await within_patience(cuff.wait_for(silent_and_free))
            records = await asyncio.gather(*(cuff.measure() for cuff in cuffs))
            for cuff, record in zip(cuffs, records, strict=True):
                await within_patience(cuff.wait_for(silent_and_free))
                assert events.delivered(cuff, record) == 1, (
                    f"{cuff.address} ({cuff.config.record_style}) fell silent still "
                    f"holding seq {record.sequence_number}: its window was missed"
                )

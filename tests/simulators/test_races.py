"""Races between a cuff's own tasks (schedule, link drops, range changes) and its radio,
each provoked at the step where it used to go wrong, over Bumble virtual controllers."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from devices import gatt
from tests.simulators.bumble_central import BumbleCentral
from tests.simulators.conftest import StartCuff
from tests.simulators.test_cuff_behaviours import until
from tests.simulators.test_stored_records import bonded_session, reconnect

# How many event-loop turns after a replayed reading arrives the central hangs up, from
# at once to well past the next reading's confirmation: one of them lands between the
# cuff's check that the link is up and its indication (found at 5 turns with Bumble
# 0.0.236), the others around it.
REPLAY_DROP_POINTS = 12


async def test_two_advertising_starts_at_once_leave_the_cuff_advertising(
    start_cuff: StartCuff, central: BumbleCentral
) -> None:
    """As when a measurement ends while the link drops: both ask to advertise. The link
    leaves Bumble's ended advertising set behind, which each start used to remove."""
    cuff = await start_cuff()
    await bonded_session(central, cuff)
    await cuff.go_out_of_range()

    await asyncio.gather(cuff.come_back(), cuff.come_back())

    assert cuff.advertising
    [sighting] = await central.discover()
    assert sighting.address == cuff.address


async def test_going_out_of_range_as_advertising_starts_leaves_the_cuff_silent(
    start_cuff: StartCuff,
) -> None:
    cuff = await start_cuff()
    await cuff.go_out_of_range()

    await asyncio.gather(cuff.come_back(), cuff.go_out_of_range())

    assert not cuff.advertising
    assert cuff.device is not None and not cuff.device.is_advertising


async def test_a_measurement_whose_indication_the_link_cuts_short_returns_its_record(
    start_cuff: StartCuff, central: BumbleCentral
) -> None:
    """The link ends while the result is being indicated; the measurement then restarts
    advertising as the disconnection does (this was "schedule failed: KeyError(0)")."""
    cuff = await start_cuff(record_style="bps10")
    session = await bonded_session(central, cuff)
    await session.subscribe(gatt.BLOOD_PRESSURE_MEASUREMENT)
    measuring = asyncio.ensure_future(cuff.measure())
    await until(cuff, lambda c: len(c.measurement_log) == 1)

    await session.disconnect()

    assert await measuring is cuff.measurement_log[0]


async def test_the_schedule_keeps_measuring_after_a_link_drops_during_a_measurement(
    start_cuff: StartCuff, central: BumbleCentral
) -> None:
    cuff = await start_cuff(
        record_style="bps10",
        measurement_interval=timedelta(minutes=5),
        # Room for pairing and subscribing on a loaded machine (3 h is 5.4 s at the
        # tests' speed), so the first result goes out live.
        first_measurement_after=timedelta(hours=3),
    )
    session = await bonded_session(central, cuff)
    await session.subscribe(gatt.BLOOD_PRESSURE_MEASUREMENT)
    subscribed_at = cuff.clock.now()
    await until(cuff, lambda c: len(c.measurement_log) == 1)
    # Set-up guard: the result went out as an indication, not into the store.
    assert cuff.measurement_log[0].taken_at > subscribed_at

    await session.disconnect()

    await until(cuff, lambda c: len(c.measurement_log) >= 2)


async def test_bps10_a_link_dropped_during_a_replay_loses_no_reading(
    start_cuff: StartCuff, central: BumbleCentral
) -> None:
    """A BPS 1.0 cuff deletes a stored reading only once the central confirmed it on a
    live link; what it still holds reaches the central on a later connection."""
    cuff = await start_cuff(record_style="bps10")
    await (await bonded_session(central, cuff)).disconnect()
    received: list[bytes] = []
    for turns in range(REPLAY_DROP_POINTS):
        for _ in range(2):
            await cuff.measure()  # no central connected: stored
        session = await reconnect(central, cuff)
        await session.subscribe(gatt.BLOOD_PRESSURE_MEASUREMENT)
        received.append(await session.next(gatt.BLOOD_PRESSURE_MEASUREMENT))
        for _ in range(turns):
            await asyncio.sleep(0)
        await session.disconnect()
        received += session.drain(gatt.BLOOD_PRESSURE_MEASUREMENT)

    last = await reconnect(central, cuff)
    await last.subscribe(gatt.BLOOD_PRESSURE_MEASUREMENT)
    await until(cuff, lambda c: not c.stored)
    received += last.drain(gatt.BLOOD_PRESSURE_MEASUREMENT)

    assert {r.payload for r in cuff.measurement_log} <= set(received)

"""Cuff behaviours over time: schedule, flaky link, battery, brief BPS 1.1 cuffs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest
from bumble import hci

from devices import gatt
from devices.bps import (
    BatteryLevel,
    RacpRequest,
    RacpResponse,
    RacpResponseCode,
    decode_racp_indication,
)
from simulators.cuff import CuffConfig, FlakyLink, SimulatedCuff
from simulators.physiology import MeasurementProblem
from tests.simulators.bumble_central import TIMEOUT, BumbleCentral
from tests.simulators.conftest import StartCuff


async def until(cuff: SimulatedCuff, predicate: Callable[[SimulatedCuff], bool]) -> None:
    """Wait for a state the cuff reaches by itself (bounded: a guard, not a timing check)."""
    async with asyncio.timeout(TIMEOUT):
        await cuff.wait_for(predicate)


async def test_scheduled_measurements_cycle_through_the_configured_problems(
    start_cuff: StartCuff,
) -> None:
    cuff = await start_cuff(
        measurement_interval=timedelta(minutes=5),
        problems=(None, MeasurementProblem.ERROR_FRAME),
    )
    await until(cuff, lambda c: len(c.measurement_log) >= 4)
    assert [r.problem for r in cuff.measurement_log[:4]] == [
        None,
        MeasurementProblem.ERROR_FRAME,
        None,
        MeasurementProblem.ERROR_FRAME,
    ]
    assert [r.sequence_number for r in cuff.measurement_log[:4]] == [0, 1, 2, 3]


async def test_a_flaky_cuff_drops_the_link_by_itself_and_comes_back(
    start_cuff: StartCuff, central: BumbleCentral
) -> None:
    cuff = await start_cuff(
        flaky_link=FlakyLink(every=timedelta(minutes=40), lasting=timedelta(minutes=10))
    )
    session = await central.connect(cuff.address)

    assert await session.wait_disconnected() == hci.HCI_CONNECTION_TIMEOUT_ERROR
    await until(cuff, lambda c: c.in_range and c.advertising)


async def test_the_battery_drains_with_measurements_and_is_notified(
    start_cuff: StartCuff, central: BumbleCentral
) -> None:
    cuff = await start_cuff(battery_level=50)
    session = await central.connect(cuff.address)
    await session.subscribe(gatt.BATTERY_LEVEL)

    for _ in range(8):
        await cuff.measure()

    levels = [BatteryLevel.from_bytes(v).level for v in session.drain(gatt.BATTERY_LEVEL)]
    assert levels and all(level < 50 for level in levels)
    assert levels == sorted(levels, reverse=True)


async def test_a_recorded_dose_raises_the_next_readings(start_cuff: StartCuff) -> None:
    cuff = await start_cuff(high_responder=True)
    before = cuff.patient.expected(cuff.clock.now(), cuff.doses).systolic
    cuff.record_dose(cuff.clock.now() - cuff.patient.response.peak_after)
    after = cuff.patient.expected(cuff.clock.now(), cuff.doses).systolic
    assert after - before >= 35


async def test_a_brief_bps11_cuff_hangs_up_once_the_racp_report_is_done(
    start_cuff: StartCuff, central: BumbleCentral
) -> None:
    cuff = await start_cuff(
        connectable="brief", record_style="bps11", advertising_window=timedelta(hours=2)
    )
    await cuff.measure()
    session = await central.connect(cuff.address)
    await session.pair()
    await session.subscribe(gatt.RECORD_ACCESS_CONTROL_POINT)
    await session.subscribe(gatt.BLOOD_PRESSURE_RECORD)

    await session.write(gatt.RECORD_ACCESS_CONTROL_POINT, bytes(RacpRequest.report_all()))

    assert decode_racp_indication(
        await session.next(gatt.RECORD_ACCESS_CONTROL_POINT)
    ) == RacpResponse(RacpRequest.report_all().op_code, RacpResponseCode.SUCCESS)
    assert await session.wait_disconnected() == hci.HCI_REMOTE_USER_TERMINATED_CONNECTION_ERROR


async def test_a_windows_cuff_advertises_only_briefly_after_a_measurement(
    start_cuff: StartCuff,
) -> None:
    """Issue #18: `connectable="windows"` advertises for 1-3 real seconds (here 0.1-0.2)
    after power-on and each measurement, and stays silent when back in range."""
    cuff = await start_cuff(connectable="windows", window_seconds=(0.1, 0.2))
    assert cuff.advertising
    await until(cuff, lambda c: not c.advertising)
    await cuff.go_out_of_range()
    await cuff.come_back()
    assert not cuff.advertising  # no window without a measurement
    await cuff.measure()
    assert cuff.advertising
    await until(cuff, lambda c: not c.advertising)
    assert [r.sequence_number for r in cuff.stored] == [0]


def test_a_windows_cuff_needs_a_sane_window() -> None:
    with pytest.raises(ValueError, match="window_seconds"):
        CuffConfig(connectable="windows", window_seconds=(3.0, 1.0))

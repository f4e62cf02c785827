"""Fixtures for the simulator's Bluetooth tests: one virtual radio, fast simulated time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest

from simulators.clock import SimClock
from simulators.cuff import CuffConfig, SimulatedCuff
from simulators.radio import VirtualRadio
from tests.simulators.bumble_central import BumbleCentral

# Fast enough that a half-minute measurement takes ~15 ms of real time.
TEST_SPEED = 2000.0

StartCuff = Callable[..., Awaitable[SimulatedCuff]]


@pytest.fixture
async def radio() -> AsyncIterator[VirtualRadio]:
    async with VirtualRadio() as radio:
        yield radio


@pytest.fixture
def clock() -> SimClock:
    return SimClock(TEST_SPEED)


@pytest.fixture
async def start_cuff(radio: VirtualRadio, clock: SimClock) -> AsyncIterator[StartCuff]:
    """Start a cuff on the radio: `await start_cuff(record_style="bps11", ...)`."""
    cuffs: list[SimulatedCuff] = []

    async def start(**overrides: Any) -> SimulatedCuff:
        config = replace(
            CuffConfig(address="D0:00:00:00:00:01", local_name="SIM-BP 1"), **overrides
        )
        cuff = SimulatedCuff(config, clock=clock, link=radio.link)
        await cuff.start()
        cuffs.append(cuff)
        return cuff

    yield start
    for cuff in cuffs:
        await cuff.stop()


@pytest.fixture
async def central(radio: VirtualRadio) -> AsyncIterator[BumbleCentral]:
    central = BumbleCentral(radio.add_central_controller("test-central"))
    await central.start()
    yield central
    await central.close()

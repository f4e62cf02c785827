"""Fixtures for the Bluetooth tests: a virtual radio, the daemon's host on it, the
simulator's cuffs, and a supervisor that records what it publishes."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import UTC
from typing import Any, TypeVar

import pytest
from bumble.link import LocalLink

from devices.bumble_backend import BumbleHost
from devices.events import CuffEvent, MeasurementFailed, MeasurementReceived
from devices.supervisor import CuffSupervisor, ReconnectBackoff
from simulators.clock import SimClock
from simulators.cuff import CuffConfig, MeasurementRecord, SimulatedCuff
from simulators.radio import VirtualRadio
from simulators.scenarios import scenario_configs

CENTRAL_ADDRESS = "C0:00:00:00:00:01"
# Simulated seconds per real second: a 30 s measurement takes 30 ms.
TEST_SPEED = 1000.0
# Real seconds: a guard against hangs, never a timing assertion.
PATIENCE = 20.0
# Real milliseconds between a cuff's advertisements: fast, so that at TEST_SPEED a cuff
# back in range is connected within a few simulated seconds (the scenarios' 100 ms is
# almost two simulated minutes at this speed).
ADVERTISING_INTERVAL_MS = 20.0

E = TypeVar("E")


@pytest.fixture
def link() -> LocalLink:
    """An in-process radio: every Bumble controller on it hears every other."""
    return LocalLink()  # type: ignore[no-untyped-call]


@pytest.fixture
async def radio(link: LocalLink) -> AsyncIterator[VirtualRadio]:
    async with VirtualRadio(link) as radio:
        yield radio


@pytest.fixture
async def central(link: LocalLink) -> AsyncIterator[BumbleHost]:
    """The daemon's side: a Bumble host on its own virtual controller."""
    host = await BumbleHost.on_link(link, address=CENTRAL_ADDRESS)
    try:
        yield host
    finally:
        await host.close()


@pytest.fixture
def clock() -> SimClock:
    return SimClock(TEST_SPEED)


StartCuff = Callable[..., Awaitable[SimulatedCuff]]


async def stop_all(cuffs: list[SimulatedCuff]) -> None:
    """Stop the cuffs, each given a few seconds: a simulator task that missed its
    cancellation must not hang the test run."""
    for cuff in cuffs:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await cuff.stop()


@pytest.fixture
async def start_cuff(link: LocalLink, clock: SimClock) -> AsyncIterator[StartCuff]:
    """`await start_cuff(address=..., record_style="bps11", ...)`: a simulated cuff."""
    cuffs: list[SimulatedCuff] = []

    async def start(**overrides: Any) -> SimulatedCuff:
        number = len(cuffs) + 1
        config = replace(
            CuffConfig(
                address=f"D0:00:00:00:00:{number:02X}",
                local_name=f"SIM-BP {number}",
                serial=f"SIM-{number:04d}",
                advertising_interval_ms=ADVERTISING_INTERVAL_MS,
            ),
            **overrides,
        )
        cuff = SimulatedCuff(config, clock=clock, link=link)
        await cuff.start()
        cuffs.append(cuff)
        return cuff

    yield start
    await stop_all(cuffs)


StartFleet = Callable[..., Awaitable[list[SimulatedCuff]]]


@pytest.fixture
async def start_fleet(link: LocalLink, clock: SimClock) -> AsyncIterator[StartFleet]:
    """`await start_fleet("clinic", count=6, seed=1, **overrides)`: a scenario's cuffs
    (`simulators.scenarios.scenario_configs`) with some settings overridden."""
    cuffs: list[SimulatedCuff] = []

    async def start(name: str, *, count: int, seed: int, **overrides: Any) -> list[SimulatedCuff]:
        fleet = []
        for config in scenario_configs(name, count=count, seed=seed):
            settings = {"advertising_interval_ms": ADVERTISING_INTERVAL_MS, **overrides}
            cuff = SimulatedCuff(replace(config, **settings), clock=clock, link=link)
            await cuff.start()
            cuffs.append(cuff)
            fleet.append(cuff)
        return fleet

    yield start
    await stop_all(cuffs)


async def within_patience(waiting: Awaitable[object]) -> None:
    """Await `waiting`, failing the test (not hanging it) after PATIENCE real seconds."""
    try:
        async with asyncio.timeout(PATIENCE):
            await waiting
    except TimeoutError:
        raise AssertionError("gave up waiting") from None


class EventLog:
    """The daemon's `on_event`: records every event and lets a test wait for some."""

    def __init__(self) -> None:
        self.events: list[CuffEvent] = []
        self._changed = asyncio.Condition()
        # (cuff address, payload) -> how many times a reading or failure carried it.
        self._deliveries: Counter[tuple[str, bytes]] = Counter()

    async def __call__(self, event: CuffEvent) -> None:
        self.events.append(event)
        if isinstance(event, MeasurementReceived | MeasurementFailed):
            self._deliveries[(event.cuff.address, event.raw)] += 1
        async with self._changed:
            self._changed.notify_all()

    def of(self, kind: type[E], address: str | None = None) -> list[E]:
        return [
            e
            for e in self.events
            if isinstance(e, kind) and (address is None or event_address(e) == address.upper())
        ]

    async def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        try:
            async with asyncio.timeout(PATIENCE), self._changed:
                await self._changed.wait_for(condition)
        except TimeoutError:
            raise AssertionError(f"gave up waiting for {what}") from None

    def readings(self, address: str) -> list[MeasurementReceived]:
        return self.of(MeasurementReceived, address)

    def delivered(self, cuff: SimulatedCuff, record: MeasurementRecord) -> int:
        """How many times the daemon got this record (as a reading or as a failure).

        The payload carries the cuff's timestamp, so it names one reading of one cuff."""
        return self._deliveries[(cuff.address.upper(), record.payload)]

    def all_delivered(self, cuff: SimulatedCuff, records: list[MeasurementRecord]) -> bool:
        return all(self.delivered(cuff, r) >= 1 for r in records)


def event_address(event: CuffEvent) -> str:
    if isinstance(event, MeasurementReceived | MeasurementFailed):
        return event.cuff.address
    return event.address


@pytest.fixture
def events() -> EventLog:
    return EventLog()


Supervise = Callable[..., contextlib.AbstractAsyncContextManager[CuffSupervisor]]


@pytest.fixture
def supervise(central: BumbleHost, events: EventLog, clock: SimClock) -> Iterator[Supervise]:
    """`async with supervise(**options) as supervisor:` runs a CuffSupervisor on the
    daemon's host, publishing into `events`, on the simulator's clock."""

    @contextlib.asynccontextmanager
    async def run(**options: Any) -> AsyncIterator[CuffSupervisor]:
        settings: dict[str, Any] = {
            "on_event": events,
            "clock": clock.now,
            "zone": UTC,  # the simulated cuffs keep UTC
            "backoff": ReconnectBackoff(initial=0.05, maximum=0.5),
            **options,
        }
        supervisor = CuffSupervisor(central, **settings)
        task = asyncio.create_task(supervisor.run())
        try:
            yield supervisor
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    yield run

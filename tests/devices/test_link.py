"""One cuff's link (`CuffLink`) against the simulator: record styles, dedupe, identity,
pairing, and the same link code against a simulator in another process (`tcp-client:`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from datetime import UTC
from pathlib import Path

import pytest
from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError

from devices.bumble_backend import BumbleHost, PairingPolicy
from devices.events import CuffBonded, CuffDisconnected, MeasurementReceived
from devices.link import CuffLink, CuffMemory
from devices.scan import scan_cuffs
from devices.supervisor import CuffSupervisor
from devices.transport import BleStack
from simulators.clock import SimClock
from simulators.cuff import SimulatedCuff
from tests.devices.conftest import PATIENCE, EventLog, StartCuff, within_patience


async def find(central: BumbleHost, cuff: SimulatedCuff) -> BLEDevice:
    device = await BleakScanner.find_device_by_address(
        cuff.address, timeout=PATIENCE, **central.scanner_kwargs()
    )
    assert device is not None, f"{cuff.address} not seen advertising"
    return device


async def connect_once(
    central: BumbleHost,
    cuff: SimulatedCuff,
    events: EventLog,
    memory: CuffMemory,
    clock: SimClock,
    **options: object,
) -> asyncio.Task[str]:
    """Start one `CuffLink.run()` for `cuff`; the task ends when the link does."""
    link = CuffLink(
        await find(central, cuff),
        BleStack.from_host(central),
        publish=events,
        memory=memory,
        clock=clock.now,
        zone=UTC,
        **options,  # type: ignore[arg-type]
    )
    return asyncio.create_task(link.run())


async def test_first_contact_collects_every_bps11_record_with_its_sequence_number(
    start_cuff: StartCuff, central: BumbleHost, clock: SimClock, events: EventLog
) -> None:
    cuff = await start_cuff(record_style="bps11")
    stored = [await cuff.measure() for _ in range(4)]
    memory = CuffMemory(cuff.address)
    run = await connect_once(central, cuff, events, memory, clock)
    await events.wait_for(lambda: events.all_delivered(cuff, stored), "the stored records")
    await cuff.go_out_of_range()
    await within_patience(run)
    assert [e.sequence_number for e in events.readings(cuff.address)] == [0, 1, 2, 3]
    assert memory.last_sequence_number == 3


async def test_reconnection_asks_only_for_records_after_the_last_one(
    start_cuff: StartCuff, central: BumbleHost, clock: SimClock, events: EventLog
) -> None:
    cuff = await start_cuff(record_style="bps11")
    first = [await cuff.measure() for _ in range(2)]
    memory = CuffMemory(cuff.address)
    run = await connect_once(central, cuff, events, memory, clock)
    await events.wait_for(lambda: events.all_delivered(cuff, first), "the first records")
    await cuff.go_out_of_range()
    await within_patience(run)
    later = [await cuff.measure() for _ in range(2)]  # stored while out of range
    await cuff.come_back()
    delivered_before = len(events.readings(cuff.address))
    run = await connect_once(central, cuff, events, memory, clock)
    await events.wait_for(lambda: events.all_delivered(cuff, later), "the later records")
    await cuff.go_out_of_range()
    await within_patience(run)
    again = events.readings(cuff.address)[delivered_before:]
    assert [e.sequence_number for e in again] == [2, 3]


async def test_a_live_reading_served_again_as_a_record_is_delivered_once(
    start_cuff: StartCuff, central: BumbleHost, clock: SimClock, events: EventLog
) -> None:
    """BPS 1.1: indicated live on 0x2A35, then reported by the RACP at the next contact."""
    cuff = await start_cuff(record_style="bps11")
    memory = CuffMemory(cuff.address)
    run = await connect_once(central, cuff, events, memory, clock)
    await events.wait_for(lambda: bool(events.of(CuffBonded, cuff.address)), "set-up")
    live = await cuff.measure()
    await events.wait_for(lambda: events.delivered(cuff, live) == 1, "the live reading")
    await cuff.go_out_of_range()
    # Set-up ends before the RACP report is asked for: walking away while it is still
    # being asked for ends the link as a failure (the supervisor retries), not a return.
    with contextlib.suppress(BleakError):
        await within_patience(run)
    later = await cuff.measure()  # stored; the RACP reports it after the live one
    await cuff.come_back()
    run = await connect_once(central, cuff, events, memory, clock)
    await events.wait_for(lambda: events.delivered(cuff, later) == 1, "the stored reading")
    await cuff.go_out_of_range()
    await within_patience(run)
    assert events.delivered(cuff, live) == 1
    assert memory.last_sequence_number == later.sequence_number


async def test_the_link_reads_device_information_into_the_identity(
    start_cuff: StartCuff, central: BumbleHost, clock: SimClock, events: EventLog
) -> None:
    cuff = await start_cuff(manufacturer="Acme Medical", model="BP-7", serial="S-1", firmware="2.1")
    reading = await cuff.measure()
    run = await connect_once(central, cuff, events, CuffMemory(cuff.address), clock)
    await events.wait_for(lambda: events.delivered(cuff, reading) == 1, "a reading")
    await cuff.go_out_of_range()
    await within_patience(run)
    identity = events.readings(cuff.address)[0].cuff
    assert (identity.manufacturer, identity.model, identity.serial, identity.firmware) == (
        "Acme Medical",
        "BP-7",
        "S-1",
        "2.1",
    )
    assert identity.name == cuff.name


async def test_the_link_returns_when_the_cuff_goes_out_of_range(
    start_cuff: StartCuff, central: BumbleHost, clock: SimClock, events: EventLog
) -> None:
    cuff = await start_cuff()
    run = await connect_once(central, cuff, events, CuffMemory(cuff.address), clock)
    reading = await cuff.measure()
    await events.wait_for(lambda: events.delivered(cuff, reading) == 1, "set-up and a reading")
    await cuff.go_out_of_range()
    await within_patience(run)
    assert run.result() == "the cuff closed the connection"
    assert [e.reason for e in events.of(CuffDisconnected)] == [run.result()]


async def test_a_passkey_cuff_pairs_with_the_passkey_the_clinic_configured(
    start_cuff: StartCuff, link: object, clock: SimClock, events: EventLog
) -> None:
    """ "Just Works unless configured": a cuff showing a passkey needs one typed in."""
    from bumble import pairing

    class TypeThePasskey(pairing.PairingDelegate):
        def __init__(self) -> None:
            super().__init__(io_capability=pairing.PairingDelegate.KEYBOARD_INPUT_ONLY)

        async def get_number(self) -> int | None:
            return 424242

    host = await BumbleHost.on_link(
        link,  # type: ignore[arg-type]
        address="C0:00:00:00:00:02",
        pairing_policy=PairingPolicy(mitm=True, delegate=TypeThePasskey()),
    )
    try:
        cuff = await start_cuff(security="passkey", passkey=424242)
        reading = await cuff.measure()
        run = await connect_once(host, cuff, events, CuffMemory(cuff.address), clock)
        await events.wait_for(lambda: events.delivered(cuff, reading) == 1, "a reading")
        await cuff.go_out_of_range()
        await within_patience(run)
    finally:
        await host.close()
    assert cuff.pairings == ["C0:00:00:00:00:02"]


async def test_cancelling_during_pairing_ends_the_link_with_cancelled_error(
    start_cuff: StartCuff, link: object, clock: SimClock, events: EventLog
) -> None:
    """The daemon's shutdown cancels links mid-pairing; a cancellation swallowed there
    would hold it up."""
    from bumble import pairing

    asked = asyncio.Event()

    class NobodyTypesThePasskey(pairing.PairingDelegate):
        def __init__(self) -> None:
            super().__init__(io_capability=pairing.PairingDelegate.KEYBOARD_INPUT_ONLY)

        async def get_number(self) -> int | None:
            asked.set()
            await asyncio.Event().wait()
            return None

    host = await BumbleHost.on_link(
        link,  # type: ignore[arg-type]
        address="C0:00:00:00:00:04",
        pairing_policy=PairingPolicy(mitm=True, delegate=NobodyTypesThePasskey()),
    )
    try:
        cuff = await start_cuff(security="passkey", passkey=424242)
        run = await connect_once(host, cuff, events, CuffMemory(cuff.address), clock)
        await within_patience(asked.wait())
        run.cancel()
        await asyncio.wait([run], timeout=PATIENCE)
    finally:
        await host.close()
    assert run.cancelled()


async def test_scan_lists_cuffs_with_name_address_rssi_and_model(
    start_cuff: StartCuff, central: BumbleHost
) -> None:
    await start_cuff(model="BP-7", local_name="Clinic BP 1")
    cuffs = await scan_cuffs(central, 0.3)
    assert [(c.name, c.address, c.model) for c in cuffs] == [
        ("Clinic BP 1", "D0:00:00:00:00:01", "BP-7")
    ]
    assert cuffs[0].rssi < 0


# --- the simulator in another process ---------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def simulator_port(tmp_path: Path) -> AsyncIterator[int]:
    """`vitals-sim` in its own process, its radio exposed as HCI on a TCP port."""
    log = tmp_path / "vitals-sim.log"
    for _attempt in range(3):  # a port found free may be taken before the simulator binds it
        port = free_port()
        with log.open("wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "simulators.cli",
                "--scenario",
                "normotensive",
                "--count",
                "1",
                "--speed",
                "600",
                "--hci",
                f"tcp-server:127.0.0.1:{port}",
                "--duration",
                "60",
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        assert process.stdout is not None
        async with asyncio.timeout(PATIENCE):
            ready = (await process.stdout.readline()).decode()
        if "ready" in ready:
            break
        await process.wait()
    else:
        raise AssertionError(f"vitals-sim never got ready:\n{log.read_text()}")
    try:
        yield port
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                async with asyncio.timeout(10):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


async def test_the_same_link_code_runs_against_a_simulator_in_another_process(
    simulator_port: int, events: EventLog
) -> None:
    supervisor = CuffSupervisor(
        f"bumble:tcp-client:127.0.0.1:{simulator_port}",
        on_event=events,
        address="C0:00:00:00:00:03",
        zone=UTC,
    )
    task = asyncio.create_task(supervisor.run())
    try:
        await events.wait_for(
            lambda: len(events.of(MeasurementReceived)) >= 2, "two readings over HCI/TCP"
        )
    finally:
        task.cancel()
        await asyncio.wait([task])
    readings = events.of(MeasurementReceived)
    assert readings[0].cuff.model == "SIM-BP"
    assert readings[0].cuff.address.startswith("D0:5E")


async def test_a_link_made_after_a_dropped_attempt_stays_up_and_collects(
    start_cuff: StartCuff, central: BumbleHost, clock: SimClock, events: EventLog
) -> None:
    """`establish_connection` retries on the same client: the first attempt's link,
    dropped as the cuff walks away mid-set-up, must not end the second one (the short
    soak hung up on such a link right after set-up, before the BPS 1.0 replay)."""
    cuff = await start_cuff()
    reading = await cuff.measure()  # nobody connected: the cuff keeps it
    assert cuff.device is not None

    async def walk_away_and_back() -> None:
        await cuff.go_out_of_range()
        await cuff.come_back()

    walks: list[asyncio.Task[None]] = []
    cuff.device.once(
        "connection", lambda _c: walks.append(asyncio.create_task(walk_away_and_back()))
    )
    run = await connect_once(central, cuff, events, CuffMemory(cuff.address), clock)
    await events.wait_for(lambda: events.delivered(cuff, reading) == 1, "the replayed reading")
    await within_patience(asyncio.gather(*walks))
    assert not run.done()
    await cuff.go_out_of_range()
    await within_patience(run)

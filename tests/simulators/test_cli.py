"""`vitals-sim` as its own process, seen from this one through HCI over TCP."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from bumble.transport import open_transport

from devices import gatt
from devices.bps import BloodPressureMeasurement
from simulators.cli import main
from simulators.scenarios import cuff_address
from tests.simulators.bumble_central import TIMEOUT, BumbleCentral


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Simulator:
    process: asyncio.subprocess.Process
    port: int
    ready_line: str


async def launch(port: int, log: Path) -> tuple[asyncio.subprocess.Process, str]:
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "simulators.cli",
            "--scenario",
            "normotensive",
            "--count",
            "2",
            "--speed",
            "1000",
            "--seed",
            "7",
            "--hci",
            f"tcp-server:127.0.0.1:{port}",
            "--duration",
            "120",
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    assert process.stdout is not None
    async with asyncio.timeout(30):
        line = (await process.stdout.readline()).decode()
    return process, line


@pytest.fixture
async def simulator(tmp_path: Path) -> AsyncIterator[Simulator]:
    log = tmp_path / "vitals-sim.log"
    # A port found free can be taken by another process before the simulator binds it:
    # then it exits at once, and another port is tried.
    for _attempt in range(3):
        port = free_port()
        process, line = await launch(port, log)
        if "ready" in line:
            break
        async with asyncio.timeout(TIMEOUT):
            await process.wait()
    else:
        raise AssertionError(f"vitals-sim never got ready:\n{log.read_text()}")
    try:
        yield Simulator(process, port, line)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(TIMEOUT):
                await process.wait()


async def test_a_central_in_another_process_sees_and_reads_the_simulated_cuffs(
    simulator: Simulator,
) -> None:
    transport = await open_transport(f"tcp-client:127.0.0.1:{simulator.port}")
    central = BumbleCentral(transport=transport)
    try:
        await central.start()
        sightings = await central.discover(gatt.BLOOD_PRESSURE_SERVICE, count=2)
        assert [s.address for s in sightings] == [cuff_address(7, 0), cuff_address(7, 1)]

        session = await central.connect(sightings[0].address)
        await session.pair()
        await session.subscribe(gatt.BLOOD_PRESSURE_MEASUREMENT)
        # The cuff measures every five simulated minutes and replays what it stored.
        measurement = BloodPressureMeasurement.from_bytes(
            await session.next(gatt.BLOOD_PRESSURE_MEASUREMENT)
        )
        assert 60 < measurement.systolic < 200
    finally:
        await central.close()
        await transport.close()


async def test_the_simulator_stops_cleanly_on_sigterm(simulator: Simulator) -> None:
    simulator.process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(TIMEOUT):
        assert await simulator.process.wait() == 0


def test_an_unknown_scenario_is_refused_with_the_known_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--scenario", "nonsense"])
    assert exit_.value.code == 2
    assert "clinic" in capsys.readouterr().err


def test_a_zero_speed_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--speed", "0"])
    assert "--speed" in capsys.readouterr().err

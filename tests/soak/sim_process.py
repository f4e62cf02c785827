"""The soak's simulator process: simulated cuffs on a virtual radio, exposed to the
daemon as HCI over TCP, measuring on a schedule and dropping out of range (`flaky-link`,
issue #9 "Soak"), with the cuffs' own log of what they measured as the ground truth.

The measuring and the flaky link are driven here (not by the cuffs' own schedules) so
that the soak can stop both, bring every cuff back in range and let the daemon collect
what is still stored before comparing.

Commands on stdin, one per line: `quiesce` (stop measuring and flaking, every cuff back
in range; answers `quiesced N` with the number of measurements taken), `dump` (write
the measurement log, what each cuff still holds and how it stands, to `--out`; answers
`dumped`), `stop`.

    python -m tests.soak.sim_process --count 8 --speed 60 --port 9100 --out log.json ...
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import random
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from devices.bumble_backend import VirtualController
from simulators.cuff import SimulatedCuff
from simulators.physiology import Profile
from simulators.radio import VirtualRadio
from simulators.scenarios import scenario_configs
from tests.soak.clock import shared_clock

# Simulated time before the soak's start at which the severe patients were dosed: near
# the peak of their response (30-40 minutes after dosing, simulators/physiology.py).
DOSED_BEFORE = timedelta(minutes=30)


def soak_configs(count: int, seed: int, severe_every: int, hypotensive_every: int) -> list[Any]:
    """The `flaky-link` scenario's cuffs, with the measuring and flaking left to this
    process; every `severe_every`-th patient is hypertensive and a high responder (dosed
    before the start, so reading severe), every `hypotensive_every`-th hypotensive."""
    configs = []
    for index, config in enumerate(scenario_configs("flaky-link", count=count, seed=seed)):
        config = replace(config, measurement_interval=None, flaky_link=None, dose_after=None)
        if severe_every and index % severe_every == severe_every - 1:
            config = replace(config, profile=Profile.HYPERTENSIVE, high_responder=True)
        elif hypotensive_every and index % hypotensive_every == hypotensive_every - 2:
            config = replace(config, profile=Profile.HYPOTENSIVE, high_responder=False)
        configs.append(config)
    return configs


def record_of(cuff: SimulatedCuff, record: Any) -> dict[str, Any]:
    reading = record.reading

    def number(value: float) -> float | None:
        return None if math.isnan(value) else float(value)

    return {
        "address": cuff.address.upper(),
        "sequence_number": record.sequence_number,
        "taken_at": record.taken_at.isoformat(),
        "cuff_time": record.cuff_time.isoformat(),
        "systolic": number(record.measurement.systolic),
        "diastolic": number(record.measurement.diastolic),
        "pulse_rate": None
        if record.measurement.pulse_rate is None
        else number(record.measurement.pulse_rate),
        "error": reading.is_error,
        "payload": record.payload.hex(),
    }


def controller_links(controller: Any) -> list[str]:
    """The peers a virtual controller holds a link to (its own view)."""
    if controller is None:
        return []
    return [str(address) for address in controller.le_connections]


class Driver:
    """Measures each cuff every `interval` and takes it out of range for `lasting` every
    `every` (simulated), from random offsets, until told to stop."""

    def __init__(
        self,
        cuffs: Sequence[SimulatedCuff],
        *,
        interval: timedelta,
        every: timedelta | None,
        lasting: timedelta | None,
        seed: int,
    ) -> None:
        self.cuffs = list(cuffs)
        self.interval = interval
        self.every = every
        self.lasting = lasting
        self.rng = random.Random(seed)
        self.stopping = asyncio.Event()
        self.out_of_range: set[str] = set()
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for cuff in self.cuffs:
            self.tasks.append(asyncio.create_task(self._measure(cuff)))
            if self.every is not None and self.lasting is not None:
                self.tasks.append(asyncio.create_task(self._flake(cuff)))

    async def _pause(self, cuff: SimulatedCuff, simulated: timedelta) -> bool:
        """Wait `simulated` time; False when told to stop meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), cuff.clock.real_seconds(simulated))
        return not self.stopping.is_set()

    async def _measure(self, cuff: SimulatedCuff) -> None:
        if not await self._pause(cuff, self.interval * self.rng.random()):
            return
        while True:
            started = cuff.clock.now()
            await cuff.measure()
            if not await self._pause(cuff, started + self.interval - cuff.clock.now()):
                return

    async def _flake(self, cuff: SimulatedCuff) -> None:
        assert self.every is not None and self.lasting is not None
        if not await self._pause(cuff, self.every * self.rng.random()):
            return
        while True:
            await cuff.go_out_of_range()
            self.out_of_range.add(cuff.address)
            await self._pause(cuff, self.lasting)
            await cuff.come_back()
            self.out_of_range.discard(cuff.address)
            if not await self._pause(cuff, self.every - self.lasting):
                return

    async def quiesce(self) -> None:
        self.stopping.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for cuff in self.cuffs:
            if cuff.address in self.out_of_range:
                await cuff.come_back()
        self.out_of_range.clear()


async def read_commands() -> asyncio.Queue[str]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str] = asyncio.Queue()

    def reader() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(queue.put_nowait, line.strip())
        loop.call_soon_threadsafe(queue.put_nowait, "stop")

    loop.run_in_executor(None, reader)
    return queue


async def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--speed", type=float, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epoch-real", type=float, required=True)
    parser.add_argument("--epoch-sim", type=datetime.fromisoformat, required=True)
    parser.add_argument("--interval-minutes", type=float, default=5.0)
    parser.add_argument("--flaky-every-minutes", type=float, default=15.0)
    parser.add_argument("--flaky-lasting-minutes", type=float, default=6.0)
    parser.add_argument("--severe-every", type=int, default=5)
    parser.add_argument("--hypotensive-every", type=int, default=5)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    # VITALSD_SOAK_SIM_LOG=INFO logs every cuff's measurement, link, replay and delivery.
    logging.getLogger("simulators").setLevel(os.environ.get("VITALSD_SOAK_SIM_LOG", "WARNING"))
    clock = shared_clock(args.speed, args.epoch_real, args.epoch_sim)
    radio = VirtualRadio()
    configs = soak_configs(args.count, args.seed, args.severe_every, args.hypotensive_every)
    cuffs = [SimulatedCuff(config, clock=clock, link=radio.link) for config in configs]
    for cuff in cuffs:
        if cuff.config.high_responder:
            cuff.record_dose(args.epoch_sim - DOSED_BEFORE)
        await cuff.start()
    bridge = await radio.expose_hci(
        f"tcp-server:127.0.0.1:{args.port}", controller_class=VirtualController
    )
    flaky = args.flaky_every_minutes > 0
    driver = Driver(
        cuffs,
        interval=timedelta(minutes=args.interval_minutes),
        every=timedelta(minutes=args.flaky_every_minutes) if flaky else None,
        lasting=timedelta(minutes=args.flaky_lasting_minutes) if flaky else None,
        seed=args.seed,
    )
    driver.start()
    print(f"ready {len(cuffs)}", flush=True)
    commands = await read_commands()
    try:
        while True:
            command = await commands.get()
            if command == "quiesce":
                await driver.quiesce()
                taken = sum(len(c.measurement_log) for c in cuffs)
                print(f"quiesced {taken}", flush=True)
            elif command == "dump":
                log = {
                    "measured": [record_of(c, r) for c in cuffs for r in c.measurement_log],
                    # What each cuff still keeps for a central (BPS 1.1: every record).
                    "held": {
                        c.address.upper(): [r.sequence_number for r in c.stored] for c in cuffs
                    },
                    # How each cuff stands now, to tell why a central did not collect.
                    "cuffs": {
                        c.address.upper(): {
                            "record_style": c.config.record_style,
                            "in_range": c.in_range,
                            "peers": c.peers,
                            "advertising": c.advertising,
                            "advertising_on_air": c.advertising_on_air,
                            "racp_in_progress": c.racp_in_progress,
                            # The link layer's view: whom its controller is linked to.
                            "controller_links": controller_links(c.controller),
                        }
                        for c in cuffs
                    },
                    # The daemon's controller (HCI over TCP): links, pending, scanning.
                    "central": {
                        "links": controller_links(bridge),
                        "pending": None
                        if bridge.pending_le_connection is None
                        else str(bridge.pending_le_connection.peer_address),
                        "scanning": bool(bridge.le_scan_enable),
                    },
                }
                args.out.write_text(json.dumps(log))
                print("dumped", flush=True)
            elif command == "stop":
                break
    finally:
        await driver.quiesce()
        for cuff in cuffs:
            with contextlib.suppress(Exception):
                await cuff.stop()
        await radio.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(sys.argv[1:])))

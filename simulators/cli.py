"""The `vitals-sim` command: run simulated blood-pressure cuffs.

    vitals-sim --scenario clinic --speed 60 --hci tcp-server:127.0.0.1:9100

`--hci tcp-server:HOST:PORT` hosts the cuffs on a virtual radio and exposes one more
virtual controller there as HCI over TCP: a central in another process (vitalsd, or
any Bumble host) attaches with `tcp-client:HOST:PORT` and sees the cuffs advertise.
Any other Bumble transport (`usb:0`, `serial:/dev/ttyACM0`, ...) hosts one cuff on that
real controller, visible to phones and real centrals; repeat `--hci` for more cuffs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from bumble.transport import open_transport
from bumble.transport.common import Transport

from simulators.clock import SimClock
from simulators.radio import VirtualRadio
from simulators.scenarios import SCENARIOS, CuffFleet, start_scenario

DEFAULT_HCI = "tcp-server:127.0.0.1:9100"
logger = logging.getLogger("simulators.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vitals-sim",
        description="Run simulated Bluetooth LE blood-pressure cuffs (Bumble peripherals).",
        epilog="scenarios: " + "; ".join(f"{s.name} ({s.description})" for s in SCENARIOS.values()),
    )
    parser.add_argument("--scenario", default="clinic", choices=sorted(SCENARIOS))
    parser.add_argument(
        "--count", type=int, default=None, help="number of cuffs (default: the scenario's)"
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="simulated seconds per real second (60: a two-hour session in two minutes)",
    )
    parser.add_argument("--seed", type=int, default=0, help="patients and readings seed")
    parser.add_argument(
        "--hci",
        action="append",
        metavar="TRANSPORT",
        help=f"Bumble transport; tcp-server:HOST:PORT exposes the virtual radio, any other "
        f"(usb:0, ...) hosts one cuff on that controller; repeatable (default {DEFAULT_HCI})",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop after this many real seconds (default: run until interrupted)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log Bumble's debug output")
    return parser


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    specs: list[str] = args.hci or [DEFAULT_HCI]
    virtual = [s for s in specs if s.startswith("tcp-server:")]
    if virtual and len(virtual) != len(specs):
        parser.error(
            "--hci: mix of tcp-server: (virtual radio) and real transports; run one "
            "vitals-sim per kind"
        )
    if args.count is not None and args.count < 1:
        parser.error(f"--count must be at least 1, got {args.count}")
    try:
        SimClock(args.speed)
    except ValueError as error:
        parser.error(f"--speed: {error}")
    if args.duration is not None and args.duration <= 0:
        parser.error(f"--duration must be positive, got {args.duration}")
    return specs


async def _run(args: argparse.Namespace, specs: list[str]) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    radio: VirtualRadio | None = None
    transports: list[Transport] = []
    fleet: CuffFleet | None = None
    try:
        if specs[0].startswith("tcp-server:"):
            radio = VirtualRadio()
            fleet = await start_scenario(
                args.scenario, count=args.count, seed=args.seed, speed=args.speed, link=radio
            )
            for spec in specs:
                await radio.expose_hci(spec)
            where = ", ".join("tcp-client:" + s.removeprefix("tcp-server:") for s in specs)
        else:
            for spec in specs:
                transports.append(await open_transport(spec))
            fleet = await start_scenario(
                args.scenario,
                count=args.count,
                seed=args.seed,
                speed=args.speed,
                transports=transports,
            )
            where = ", ".join(specs)
        cuffs = ", ".join(f"{c.name} {c.address}" for c in fleet.cuffs)
        print(
            f"vitals-sim: ready: scenario {args.scenario}, {len(fleet.cuffs)} cuff(s) "
            f"[{cuffs}] at speed {args.speed:g}; centrals attach with {where}",
            flush=True,
        )
        if args.duration is None:
            await stop.wait()
        else:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(args.duration):
                    await stop.wait()
    finally:
        if fleet is not None:
            await fleet.stop()
        if radio is not None:
            await radio.close()
        for transport in transports:
            with contextlib.suppress(Exception):
                await transport.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    specs = _check(parser, args)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("bumble").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    try:
        return asyncio.run(_run(args, specs))
    except OSError as error:
        print(f"vitals-sim: cannot open the HCI transport: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())

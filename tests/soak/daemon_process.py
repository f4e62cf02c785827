"""The soak's daemon: `vitalsd.daemon.Daemon`, the code `vitalsd serve` runs, on the soak's
simulated clock (the clinic's schedule runs at the cuffs' speed, as in `vitalsd demo`),
reaching the cuffs through HCI over TCP. The soak kills it with SIGKILL and starts it
again; it prints `ready URL` once serving.

    python -m tests.soak.daemon_process --data-dir DIR --port 8000 --ble tcp-client:... ...
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse
import asyncio
import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import SecretStr

from tests.soak.clock import shared_clock
from vitalsd.clinic import Clinic
from vitalsd.daemon import Daemon
from vitalsd.settings import Settings


async def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ble", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--speed", type=float, required=True)
    parser.add_argument("--epoch-real", type=float, required=True)
    parser.add_argument("--epoch-sim", type=datetime.fromisoformat, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    # What the measurement inbox replays after each SIGKILL, for the soak's log; with
    # VITALSD_SOAK_DEVICES_LOG=INFO every link's end and failure too (a lot).
    logging.getLogger("devices.inbox").setLevel(logging.INFO)
    logging.getLogger("devices").setLevel(os.environ.get("VITALSD_SOAK_DEVICES_LOG", "WARNING"))
    settings = Settings(
        data_dir=args.data_dir,
        host="127.0.0.1",
        port=args.port,
        ble=args.ble,
        token_secret=SecretStr(args.secret),
        # Every soak client signs in as the one nurse: lift the per-user cap (issue #17).
        max_streams_per_user=1_000_000,
    )
    clock = shared_clock(args.speed, args.epoch_real, args.epoch_sim)
    clinic = await Clinic.open(settings, clock=clock.now)
    try:
        await Daemon(settings, clinic, clock=clock.now, zone=UTC).run(
            on_ready=lambda url: print(f"ready {url}", flush=True)
        )
    finally:
        await clinic.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(sys.argv[1:])))

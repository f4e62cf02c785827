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
import signal
import types
from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import SecretStr

from tests.soak.clock import shared_clock
from vitalsd.clinic import Clinic
from vitalsd.daemon import Daemon
from vitalsd.settings import Settings


def describe_tasks() -> str:
    """Every task and where it waits, innermost coroutine last: what the soak asks for
    (SIGUSR1) when a drain ends with readings still held, to see what each cuff's task
    was doing instead of connecting it."""
    lines = []
    for task in sorted(asyncio.all_tasks(), key=lambda t: t.get_name()):
        where = []
        awaited: object = task.get_coro()
        while isinstance(awaited, types.CoroutineType | types.AsyncGeneratorType):
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "ag_frame", None)
            if frame is not None:
                where.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "ag_await", None)
        if awaited is not None:
            where.append(type(awaited).__name__)
        lines.append(f"  task {task.get_name()!r}: {' > '.join(where)}")
    return "\n".join(lines)


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
        ws_token_in_url=True,  # the soak's clients sign in with /ws?token=
    )
    clock = shared_clock(args.speed, args.epoch_real, args.epoch_sim)
    tasks_log = logging.getLogger("tests.soak.daemon")
    tasks_log.setLevel(logging.INFO)
    asyncio.get_running_loop().add_signal_handler(
        signal.SIGUSR1, lambda: tasks_log.info("tasks:\n%s", describe_tasks())
    )
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

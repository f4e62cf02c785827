"""The soak (issue #9, `make soak`, about 10 minutes): at speed 60, 50 simulated cuffs
over two simulated hours with the `flaky-link` behaviour, 100 WebSocket clients that
drop and resume with `since` at random, and the daemon killed with SIGKILL and restarted
at five random moments; then the proof from the database, the simulator's own log and
every client's events (tests/soak/harness.py), and the counts printed.

One cuff in five is a dosed hypertensive high responder and one in five hypotensive, so
that alerts are due; the others follow the `flaky-link` scenario's patients.

    .venv/bin/python bench/soak.py [--quick] [--cuffs 50] [--clients 100] [--kills 5]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import shutil
import tempfile
from collections.abc import Sequence
from datetime import timedelta

from bench.harness import header, load
from simulators.scenarios import FLAKY, MEASUREMENT_INTERVAL
from tests.soak.harness import SoakPlan, run_soak

# "Memory did not grow without bound": the longest daemon run may end at most this much
# above its RSS a quarter of the way in.
MAX_MEMORY_GROWTH = 1.5


def plan_of(args: argparse.Namespace) -> SoakPlan:
    return SoakPlan(
        cuffs=args.cuffs,
        clients=args.clients,
        speed=60.0,
        simulated=timedelta(minutes=args.minutes),
        kills=args.kills,
        interval=MEASUREMENT_INTERVAL,
        flaky_every=FLAKY.every,
        flaky_lasting=FLAKY.lasting,
        severe_every=5,
        hypotensive_every=5,
        seed=args.seed,
        client_stay_s=10.0,
        drain_timeout_s=args.drain,
    )


async def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="10 cuffs, 20 clients, 30 min, 2 kills"
    )
    parser.add_argument("--cuffs", type=int)
    parser.add_argument("--clients", type=int)
    parser.add_argument("--minutes", type=float, help="simulated minutes (default 120)")
    parser.add_argument("--kills", type=int)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--drain", type=float, default=300.0, help="real seconds to catch up")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    quick = args.quick
    args.cuffs = args.cuffs or (10 if quick else 50)
    args.clients = args.clients or (20 if quick else 100)
    args.minutes = args.minutes or (30.0 if quick else 120.0)
    args.kills = args.kills if args.kills is not None else (2 if quick else 5)
    plan = plan_of(args)
    header("soak (issue #9)", ["bench/soak.py", *argv])
    print(
        f"{plan.cuffs} flaky-link cuffs, {plan.clients} resuming clients, "
        f"{plan.simulated} simulated at speed {plan.speed:g}, {plan.kills} SIGKILL restarts",
        flush=True,
    )
    workdir = Path(tempfile.mkdtemp(prefix="vitalsd-soak-"))
    try:
        result = await run_soak(plan, workdir)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"work directory kept: {workdir}")
    growth = result.memory_growth()
    if growth is not None and growth[2] > MAX_MEMORY_GROWTH:
        result.problems.append(
            f"daemon memory grew {growth[2]:.2f}x over its longest run (limit "
            f"{MAX_MEMORY_GROWTH:g}x)"
        )
    print(f"({load()})")
    for line in result.lines():
        print(line, flush=True)
    return 1 if result.problems else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(sys.argv[1:])))

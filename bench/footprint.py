"""Footprint (issue #9 benchmark 4): resident memory of `vitalsd serve` idle, with 50
cuffs, and with 50 cuffs and 500 clients; start-up time to a healthy `/healthz`.

`vitalsd serve` is the real command, in its own process, configured by `VITALSD_*`
variables, its cuffs simulated in another process (tests/soak/sim_process.py, HCI over
TCP, no flaky link, measuring every 5 minutes at real speed). Idle: no radio to reach
(the API serves and `/healthz` says the radio is failing). The 500 clients are a second
process (`ws_clients.py`).

Floor, same run: a Python process that only imports what the daemon imports (its
resident memory, and its start-up time to the end of the imports).

    .venv/bin/python bench/footprint.py [--quick] [--cuffs 50] [--clients 500]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from bench.harness import REPO, header, load, ratio
from bench.ws_clients import ClientFleet
from tests.soak.harness import SECRET, Child, SoakPlan, free_port, set_up_clinic
from vitalsd.auth import TokenIssuer
from vitalsd.domain import Role

IMPORTS = "import api.app, vitalsd.daemon, vitalsd.cli, devices.supervisor, uvicorn"
HEALTH_TIMEOUT_S = 60.0


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def health(port: int) -> dict[str, object] | None:
    with contextlib.suppress(OSError, ValueError):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            return dict(json.loads(answer.read()))
    return None


async def wait_healthy(port: int, timeout_s: float = HEALTH_TIMEOUT_S) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = await asyncio.to_thread(health, port)
        if found is not None and found.get("status") == "ok":
            return found
        await asyncio.sleep(0.05)
    raise TimeoutError(f"/healthz on port {port} not ok within {timeout_s:g} s")


async def import_floor() -> tuple[float, float]:
    """(seconds to import what the daemon imports, resident MiB after)."""
    code = f"import os, time; t = time.monotonic(); {IMPORTS}; print(time.monotonic() - t)"
    code += "; print(open(f'/proc/{os.getpid()}/status').read())"
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, cwd=REPO, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    elapsed = time.monotonic() - started
    lines = out.decode().splitlines()
    rss = next(int(x.split()[1]) / 1024 for x in lines if x.startswith("VmRSS:"))
    return elapsed, rss


class Serve:
    """`vitalsd serve` in its own process."""

    def __init__(self, data_dir: Path, port: int, ble: str, log: Path) -> None:
        self.data_dir = data_dir
        self.port = port
        self.ble = ble
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> float:
        """Start it; seconds until `/healthz` answers ok."""
        env = dict(os.environ)
        env.update(
            VITALSD_DATA_DIR=str(self.data_dir),
            VITALSD_PORT=str(self.port),
            VITALSD_HOST="127.0.0.1",
            VITALSD_BLE=self.ble,
            VITALSD_TOKEN_SECRET=SECRET,
            # Every client signs in as the one nurse: lift the per-user cap (issue #17).
            VITALSD_MAX_STREAMS_PER_USER="1000000",
            VITALSD_WS_TOKEN_IN_URL="true",  # its clients sign in with /ws?token=
            # wait_connected reads the radio's state from /healthz without signing in.
            VITALSD_PUBLIC_HEALTH_DETAILS="true",
        )
        started = time.monotonic()
        with self.log.open("ab") as err:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "vitalsd.cli", "serve", cwd=REPO, env=env, stderr=err
            )
        await wait_healthy(self.port)
        return time.monotonic() - started

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


async def wait_connected(port: int, cuffs: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    connected = 0
    while time.monotonic() < deadline:
        found = await asyncio.to_thread(health, port)
        ble = found.get("ble") if found else None
        connected = int(ble.get("cuffs_connected", 0)) if isinstance(ble, dict) else 0
        if connected >= cuffs:
            break
        await asyncio.sleep(0.5)
    return connected


async def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 cuffs, 100 clients")
    parser.add_argument("--cuffs", type=int)
    parser.add_argument("--clients", type=int)
    args = parser.parse_args(argv)
    cuffs = args.cuffs or (10 if args.quick else 50)
    clients = args.clients or (100 if args.quick else 500)
    header("footprint (issue #9, benchmark 4)", ["bench/footprint.py", *argv])
    floor_s, floor_mib = await import_floor()
    print(f"floor: python importing the daemon's modules: {floor_s:.2f} s, {floor_mib:.1f} MiB")
    root = Path(tempfile.mkdtemp(prefix="vitalsd-footprint-"))
    plan = SoakPlan(cuffs=cuffs, speed=1.0, severe_every=5, hypotensive_every=5)
    epoch_real, epoch_sim = time.time(), datetime.now(UTC).replace(microsecond=0)
    hci_port = free_port()
    sim = Child(
        [
            sys.executable,
            "-m",
            "tests.soak.sim_process",
            f"--count={cuffs}",
            f"--port={hci_port}",
            f"--out={root / 'measured.json'}",
            "--speed=1",
            f"--epoch-real={epoch_real}",
            f"--epoch-sim={epoch_sim.isoformat()}",
            "--interval-minutes=5",
            "--flaky-every-minutes=0",
        ],
        root / "simulator.log",
    )
    try:
        idle_dir = root / "idle"
        idle = Serve(
            idle_dir, free_port(), f"tcp-client:127.0.0.1:{free_port()}", root / "idle.log"
        )
        idle_s = await idle.start()
        await asyncio.sleep(3.0)
        idle_mib = rss_mib(idle.pid)
        await idle.stop()
        print(
            f"footprint idle: start-up to healthy /healthz {idle_s:.2f} s "
            f"({ratio(idle_s, floor_s):.2f}x the import floor), RSS {idle_mib:.1f} MiB "
            f"({ratio(idle_mib, floor_mib):.2f}x the import floor)",
            flush=True,
        )

        data_dir = root / "clinic"
        await set_up_clinic(plan, data_dir, (epoch_real, epoch_sim))
        await sim.start()
        serve = Serve(data_dir, free_port(), f"tcp-client:127.0.0.1:{hci_port}", root / "serve.log")
        serve_s = await serve.start()
        connected = await wait_connected(serve.port, cuffs, 60.0 + 3.0 * cuffs)
        await asyncio.sleep(5.0)
        cuffs_mib = rss_mib(serve.pid)
        print(
            f"footprint {cuffs} cuffs ({connected} connected): start-up {serve_s:.2f} s, "
            f"RSS {cuffs_mib:.1f} MiB ({ratio(cuffs_mib, floor_mib):.2f}x the import floor)",
            flush=True,
        )
        token = TokenIssuer(SECRET.encode(), timedelta(hours=8)).issue(
            "nurse", Role.NURSE, datetime.now(UTC)
        )
        fleet = ClientFleet(
            f"ws://127.0.0.1:{serve.port}/ws?token={token}", clients, root / "c.json", first=True
        )
        await fleet.start()
        try:
            await asyncio.sleep(5.0)
            clients_mib = rss_mib(serve.pid)
            await fleet.stop()
        finally:
            fleet.kill()
        print(
            f"footprint {cuffs} cuffs + {clients} clients: RSS {clients_mib:.1f} MiB "
            f"({(clients_mib - cuffs_mib) * 1024 / clients:.1f} KiB per client)",
            flush=True,
        )
        print(f"({load()})")
        await serve.stop()
    finally:
        with contextlib.suppress(Exception):
            await sim.tell("stop")
            sim.close_stdin()
            await sim.wait(10.0)
        await sim.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(sys.argv[1:])))

"""Several daemons on one PostgreSQL (issue #16): cuff readings per second and p99 ingest
latency with 1, 2 and 4 sites x 10 cuffs, each site's daemon reaching the database
through a TCP proxy that adds 20 ms each way (a site across town from the database).

Beside them, same run: one daemon alone, no proxy (the single-node run), and the ratio of
each configuration's throughput to one site's. Target (issue #16, once each site has its
own event stream): throughput grows with sites (>= 3x from 1 to 4) and p99 < 500 ms.
Every site's daemon is a full `Clinic` of its own site (`site` setting: its writer,
readers, LISTEN feed and event stream) in this process; the cuffs are concurrent callers
of `ingest_cuff_measurement`.

    .venv/bin/python bench/multinode.py [--quick] [--seconds S] [--sites 1,2,4] [--delay-ms 20]
        [--interval-s I]

`--interval-s I`: each cuff measures once every I seconds (the cuffs' slots spread over
the interval) instead of back to back: the latency of a reading at a paced load, not at
saturation (where p99 is the queue of a site's 10 cuffs behind its one writer).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from bench.harness import Latencies, header, load, ratio, verdict
from devices.bps import BloodPressureMeasurement, PressureUnit
from tests.postgres_cluster import PostgresCluster
from vitalsd.clinic import Actor, Clinic
from vitalsd.cuff_readings import cuff_reading
from vitalsd.domain import Role
from vitalsd.store.engine import create_engine, migrate

CUFFS_PER_SITE = 10
STAFF = Actor("bench", Role.ADMIN)
CHUNK = 65536


class DelayProxy:
    """A TCP relay to PostgreSQL that delivers every chunk `delay_s` after it was read,
    in order, in both directions (a WAN link's latency, not its bandwidth)."""

    def __init__(self, target_port: int, delay_s: float) -> None:
        self.target_port = target_port
        self.delay_s = delay_s
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer)),
            asyncio.create_task(self._pump(up_reader, writer)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
            self._tasks.difference_update(pumps)
            writer.transport.abort()
            up_writer.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line: deque[tuple[float, bytes]] = deque()
        arrived = asyncio.Event()

        async def deliver() -> None:
            while True:
                while not line:
                    arrived.clear()
                    await arrived.wait()
                due, chunk = line.popleft()
                if not chunk:
                    return
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(chunk)
                await writer.drain()

        delivering = asyncio.create_task(deliver())
        try:
            with contextlib.suppress(ConnectionError, OSError):
                while chunk := await reader.read(CHUNK):
                    line.append((time.monotonic() + self.delay_s, chunk))
                    arrived.set()
            line.append((0.0, b""))  # the end: what was read before it still arrives
            arrived.set()
            await delivering
        finally:
            delivering.cancel()


def reading(systolic: float) -> BloodPressureMeasurement:
    return BloodPressureMeasurement(
        PressureUnit.MMHG, systolic, 78.0, round(78 + (systolic - 78) / 3), pulse_rate=70.0
    )


def site_name(index: int) -> str:
    return f"site{index}"


async def populate(url: str, sites: int) -> list[list[str]]:
    """`sites` x 10 chairs, each with a cuff and an open session, each site's made by a
    daemon of that site; the cuffs per site."""
    cuffs: list[list[str]] = []
    for site in range(sites):
        clinic = Clinic(create_engine(url), site=site_name(site))
        try:
            site_cuffs = []
            for index in range(CUFFS_PER_SITE):
                cuff = f"B0:00:00:00:{site:02X}:{index:02X}"
                patient = await clinic.create_patient(
                    f"MRN-{site}-{index}", "Bench Patient", date(1970, 1, 1), by=STAFF
                )
                chair = await clinic.create_chair(f"Site {site} chair {index}", by=STAFF)
                await clinic.assign_cuff(chair.id, cuff, by=STAFF)
                await clinic.start_session(patient.id, chair.id, by=STAFF)
                site_cuffs.append(cuff)
            cuffs.append(site_cuffs)
        finally:
            await clinic.close()
    return cuffs


@dataclass(frozen=True)
class Run:
    label: str
    readings: int
    seconds: float
    latencies: Latencies

    @property
    def per_s(self) -> float:
        return self.readings / self.seconds


@contextlib.asynccontextmanager
async def site_clinic(url: str, site: str) -> AsyncIterator[Clinic]:
    clinic = Clinic(create_engine(url, pool_size=2, max_overflow=2), site=site)
    await clinic.start()  # follows the other sites (LISTEN through the same line)
    try:
        yield clinic
    finally:
        await clinic.close()


async def drive(
    label: str,
    urls: Sequence[str],
    cuffs: Sequence[Sequence[str]],
    seconds: float,
    interval_s: float = 0.0,
) -> Run:
    """Each site's cuffs ingest back to back (or once every `interval_s`) through that
    site's daemon for `seconds` (after one untimed reading each); a reading still in
    flight at the end counts."""
    async with contextlib.AsyncExitStack() as stack:
        clinics = [
            await stack.enter_async_context(site_clinic(url, site_name(index)))
            for index, url in enumerate(urls)
        ]
        latencies: list[float] = []
        start = datetime.now(UTC)
        # Warm-up, not timed: each cuff's first reading loads its chair and session.
        await asyncio.gather(
            *(
                clinic.ingest_cuff_measurement(
                    cuff, cuff_reading(reading(120)), start, bytes(reading(120))
                )
                for clinic, site in zip(clinics, cuffs, strict=True)
                for cuff in site
            )
        )
        stop_at = time.monotonic() + seconds

        async def cuff_loop(clinic: Clinic, cuff: str, slot: float) -> None:
            step = 0
            next_at = time.monotonic() + slot
            while time.monotonic() < stop_at:
                if interval_s > 0:
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                    next_at += interval_s
                    if time.monotonic() >= stop_at:
                        return
                step += 1
                m = reading(110 + step % 20)
                measured = start + timedelta(milliseconds=step + 1)
                began = time.monotonic()
                await clinic.ingest_cuff_measurement(cuff, cuff_reading(m), measured, bytes(m))
                latencies.append(time.monotonic() - began)

        began = time.monotonic()
        await asyncio.gather(
            *(
                cuff_loop(clinic, cuff, interval_s * index / len(site))
                for clinic, site in zip(clinics, cuffs, strict=True)
                for index, cuff in enumerate(site)
            )
        )
        elapsed = time.monotonic() - began
    return Run(label, len(latencies), elapsed, Latencies.of_seconds(latencies))


async def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 s per configuration")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--sites", default="1,2,4")
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--interval-s", type=float, default=0.0)
    args = parser.parse_args(argv)
    seconds = 3.0 if args.quick else args.seconds
    site_counts = [int(n) for n in args.sites.split(",")]
    pace = f"each cuff every {args.interval_s:g} s" if args.interval_s else "back to back"
    header(
        f"multinode: N sites x 10 cuffs ({pace}), each site's daemon "
        f"{args.delay_ms:g} ms from PostgreSQL",
        sys.argv,
    )
    cluster = PostgresCluster()
    await asyncio.to_thread(cluster.start)
    try:
        runs: list[Run] = []
        for sites in [0, *site_counts]:
            url = await asyncio.to_thread(cluster.database)
            await migrate(url)
            cuffs = await populate(url, max(sites, 1))
            if sites == 0:
                runs.append(
                    await drive("single node, no proxy", [url], cuffs, seconds, args.interval_s)
                )
                continue
            proxies = [DelayProxy(cluster.port, args.delay_ms / 1000) for _ in range(sites)]
            for proxy in proxies:
                await proxy.start()
            try:
                urls = [url.replace(f":{cluster.port}/", f":{p.port}/") for p in proxies]
                label = f"{sites} site(s), {args.delay_ms:g} ms"
                runs.append(await drive(label, urls, cuffs, seconds, args.interval_s))
            finally:
                for proxy in proxies:
                    await proxy.close()
    finally:
        await asyncio.to_thread(cluster.stop)
    # Paced runs offer a fixed load: their readings/s is no capacity to compare.
    one_site = (
        None if args.interval_s else next((r for r in runs if r.label.startswith("1 site")), None)
    )
    print(f"machine after the run: {load()}")
    for run in runs:
        line = f"{run.label:28s} {run.readings:6d} readings {run.per_s:8.1f}/s  {run.latencies}"
        if one_site is not None and run is not one_site and not run.label.startswith("single"):
            share = ratio(run.per_s, one_site.per_s)
            line += f"  x{share:.2f} of one site"
        print(line)
    four = next((r for r in runs if r.label.startswith("4 site")), None)
    if one_site is not None and four is not None:
        share = ratio(four.per_s, one_site.per_s)
        print(f"4 sites / 1 site = {share:.2f} ({verdict(share, 3.0, higher_is_better=True)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(sys.argv[1:])))

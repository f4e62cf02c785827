"""Fan-out (issue #9 benchmark 3): how many `/ws` clients one process keeps at p99
delivery under 100 ms, and the memory per client.

Ours: the real app (`api.app.create_app` on a `Clinic`, SQLite) under uvicorn configured
as `vitalsd serve` configures it, in this process; `--rate` reading events a second
(the data of real ingested readings) go through the clinic's own `EventBus.publish`, as
a commit publishes them. Delivery latency: from `EventBus.publish` to the client's
receipt, on CLOCK_MONOTONIC. The clients run in a second process (`ws_clients.py`) and
decode every message. Memory per client: this process's RSS after the clients connected
minus before, over their number (it includes what connecting cost, e.g. the snapshots).

Floor, same run: a bare `websockets` server broadcasting the very same JSON texts, in
the same groups at the same moments, to the same number of clients in a second process.
Target (issue #9): at 1,000 clients, ours p99 within 2x the floor's p99.

    .venv/bin/python bench/fanout.py [--quick] [--clients 100,500,1000] [--seconds 10]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import contextlib
import gc
import os
import shutil
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import uvicorn
from websockets.asyncio.server import ServerConnection, broadcast, serve

from api.app import create_app
from bench.harness import Latencies, header, load, profiled, ratio, verdict
from bench.ingest import cuff_address, measurement_of, populate
from bench.ws_clients import ClientFleet, Received
from vitalsd.auth import TokenIssuer
from vitalsd.clinic import Clinic, utc_now
from vitalsd.cuff_readings import cuff_reading
from vitalsd.daemon import WS_SERVER_OPTIONS
from vitalsd.domain import Role
from vitalsd.settings import Settings
from vitalsd.store.engine import create_engine, migrate, session_factory
from vitalsd.store.events import Event, EventBus, EventType

SECRET = b"bench-fanout-secret-bench-fanout"
# Issue #9: "the most WebSocket clients one process keeps at p99 delivery under 100 ms".
P99_LIMIT_MS = 100.0
DEFAULT_CLIENTS = (100, 250, 500, 1000)
QUICK_CLIENTS = (100, 500)


def rss_bytes() -> int:
    """This process's resident memory (Linux /proc)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


class StampedBus(EventBus):
    """The clinic's own bus, noting when each committed group of events is published."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.stamps: dict[int, float] = {}
        self.groups: list[tuple[float, list[Event]]] = []
        self.busy_s = 0.0  # time spent inside publish (fan-out included)

    async def publish(self, events: Sequence[Event]) -> None:
        now = time.monotonic()
        for event in events:
            if event.seq is not None:
                self.stamps[event.seq] = now
        self.groups.append((now, list(events)))
        await super().publish(events)
        self.busy_s += time.monotonic() - now


@dataclass
class OurServer:
    url: str
    clinic: Clinic
    bus: StampedBus
    readings: list[dict[str, Any]]  # `reading` event data of real ingested readings
    next_seq: int


def bound_socket() -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    return listener


@contextlib.asynccontextmanager
async def our_server(cuffs: int) -> AsyncIterator[OurServer]:
    """The API over a populated clinic, served by uvicorn as `vitalsd serve` does."""
    root = Path(tempfile.mkdtemp(prefix="vitalsd-fanout-"))
    url = f"sqlite+aiosqlite:///{root / 'vitalsd.sqlite3'}"
    await migrate(url)
    await populate(url, cuffs, start=utc_now() - timedelta(minutes=30))
    engine = create_engine(url)
    bus = StampedBus(session_factory(engine))
    clinic = Clinic(engine, bus=bus)
    await clinic.create_user("nurse", "not-a-real-hash", Role.NURSE)
    tokens = TokenIssuer(SECRET, lifetime=timedelta(hours=8))
    # Every client signs in as the one nurse: lift the per-user stream cap (issue #17).
    app = create_app(
        clinic,
        Settings(data_dir=root, max_streams_per_user=1_000_000, ws_token_in_url=True),
        tokens=tokens,
    )
    config = uvicorn.Config(
        app,
        log_config=None,
        log_level="warning",
        lifespan="off",
        server_header=False,
        **WS_SERVER_OPTIONS,
        backlog=4096,
    )
    server = uvicorn.Server(config)
    listener = bound_socket()
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        for cuff in range(cuffs):
            m = measurement_of(100, cuff)
            await clinic.ingest_cuff_measurement(
                cuff_address(cuff), cuff_reading(m), utc_now(), bytes(m)
            )
        readings = [
            e.data for _, events in bus.groups for e in events if e.type is EventType.READING
        ]
        token = tokens.issue("nurse", Role.NURSE, utc_now())
        port = listener.getsockname()[1]
        yield OurServer(
            f"ws://127.0.0.1:{port}/ws?token={token}",
            clinic,
            bus,
            readings,
            await clinic.bus.last_seq(),
        )
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 30)
        listener.close()
        await clinic.close()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class FloorServer:
    url: str
    connections: set[ServerConnection] = field(default_factory=set)


@contextlib.asynccontextmanager
async def floor_server() -> AsyncIterator[FloorServer]:
    """A bare `websockets` server: accepts, keeps the connection, sends what it is told."""
    state = FloorServer("")

    async def handler(connection: ServerConnection) -> None:
        state.connections.add(connection)
        try:
            await connection.wait_closed()
        finally:
            state.connections.discard(connection)

    async with serve(
        handler, "127.0.0.1", 0, max_size=None, backlog=4096, compression=None
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        state.url = f"ws://127.0.0.1:{port}/"
        yield state


async def drive_ours(server: OurServer, rate: float, seconds: float) -> int:
    """Publish `rate` reading events/s through the clinic's own bus (`EventBus.publish`,
    as a commit does) for `seconds`: the data of real ingested readings, numbered on
    from the last event. What reaches the clients is exactly what a reading would send;
    the ingest's own cost is benchmark 2 (ingest.py), the whole path benchmark 1.
    Returns the index of the first group published in this window."""
    first_group = len(server.bus.groups)
    started = time.monotonic()
    n = 0
    while time.monotonic() - started < seconds:
        server.next_seq += 1
        data = server.readings[n % len(server.readings)]
        await server.bus.publish([Event(server.next_seq, EventType.READING, utc_now(), data)])
        n += 1
        await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
    return first_group


async def drive_floor(
    floor: FloorServer, groups: Sequence[tuple[float, list[str], list[int]]]
) -> tuple[dict[int, float], float]:
    """Broadcast the same texts in the same groups at the same relative moments; also
    returns the time spent broadcasting."""
    stamps: dict[int, float] = {}
    busy_s = 0.0
    if not groups:
        return stamps, busy_s
    origin = groups[0][0]
    started = time.monotonic()
    for at, texts, seqs in groups:
        await asyncio.sleep(max(0.0, started + (at - origin) - time.monotonic()))
        now = time.monotonic()
        for seq in seqs:
            stamps[seq] = now
        for text in texts:
            broadcast(floor.connections, text)
        busy_s += time.monotonic() - now
    return stamps, busy_s


@dataclass(frozen=True)
class Delivery:
    latencies: Latencies
    expected: int
    received: int
    duplicates: int
    errors: int


def delivery(received: Received, stamps: dict[int, float], errors: list[str]) -> Delivery:
    latencies: list[float] = []
    got = dupes = 0
    for client in received:
        seen: set[int] = set()
        for seq, t in client:
            if seq is None or seq not in stamps:
                continue
            if seq in seen:
                dupes += 1
                continue
            seen.add(seq)
            got += 1
            latencies.append(t - stamps[seq])
    return Delivery(
        Latencies.of_seconds(latencies), len(stamps) * len(received), got, dupes, len(errors)
    )


@dataclass(frozen=True)
class Point:
    clients: int
    ours: Delivery
    floor: Delivery
    ours_bytes_per_client: float
    floor_bytes_per_client: float
    published: int  # events ours published in the window
    planned: int  # rate x seconds: fewer published means the publisher fell behind
    ours_busy_s: float  # inside publish, fan-out included
    floor_busy_s: float  # inside broadcast

    def lines(self) -> list[str]:
        share = ratio(self.ours.latencies.p99_ms, self.floor.latencies.p99_ms)
        return [
            f"fan-out {self.clients:5d} clients: ours published {self.published} of "
            f"{self.planned} events (the floor replays the same schedule); publishing took "
            f"{1000 * self.ours_busy_s / max(1, self.published):.1f} ms/event, the floor's "
            f"broadcast {1000 * self.floor_busy_s / max(1, self.published):.1f} ms/event",
            f"fan-out {self.clients:5d} clients: ours  {self.ours.latencies} "
            f"({self.ours.received}/{self.ours.expected} delivered, "
            f"{self.ours.duplicates} dup, {self.ours.errors} closed), "
            f"{self.ours_bytes_per_client / 1024:.1f} KiB/client",
            f"fan-out {self.clients:5d} clients: floor {self.floor.latencies} "
            f"({self.floor.received}/{self.floor.expected} delivered)",
            f"fan-out {self.clients:5d} clients: ours p99 / floor p99 = {share:.2f}"
            + (f" ({verdict(share, 2.0)})" if self.clients >= 1000 else ""),
        ]


async def measure_point(
    server: OurServer,
    floor: FloorServer,
    clients: int,
    rate: float,
    seconds: float,
    scratch: Path,
    profile: Path | None = None,
) -> Point:
    gc.collect()
    before = rss_bytes()
    fleet = ClientFleet(server.url, clients, scratch / f"ours-{clients}.json", first=True)
    await fleet.start()
    try:
        await asyncio.sleep(1.0)
        gc.collect()
        ours_bytes = (rss_bytes() - before) / clients
        busy_before = server.bus.busy_s
        with profiled(profile):
            first_group = await drive_ours(server, rate, seconds)
        ours_busy_s = server.bus.busy_s - busy_before
        await asyncio.sleep(1.0)  # let the last events arrive
        received, errors = await fleet.stop()
    finally:
        fleet.kill()
    groups = server.bus.groups[first_group:]
    stamps = {e.seq: at for at, events in groups for e in events if e.seq is not None}
    ours = delivery(received, stamps, errors)

    gc.collect()
    before = rss_bytes()
    fleet = ClientFleet(floor.url, clients, scratch / f"floor-{clients}.json", first=False)
    await fleet.start()
    try:
        await asyncio.sleep(1.0)
        gc.collect()
        floor_bytes = (rss_bytes() - before) / clients
        replay = [
            (at, [e.text for e in events], [e.seq for e in events if e.seq])
            for at, events in groups
        ]
        floor_stamps, floor_busy_s = await drive_floor(floor, replay)
        await asyncio.sleep(1.0)
        received, errors = await fleet.stop()
    finally:
        fleet.kill()
    return Point(
        clients,
        ours,
        delivery(received, floor_stamps, errors),
        ours_bytes,
        floor_bytes,
        len(stamps),
        round(rate * seconds),
        ours_busy_s,
        floor_busy_s,
    )


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 and 500 clients, 5 s each")
    parser.add_argument("--clients", help="comma-separated client counts")
    parser.add_argument("--seconds", type=float, help="events per point (default 10 s)")
    parser.add_argument("--rate", type=float, default=20.0, help="events/s (issue #9: 20)")
    parser.add_argument("--cuffs", type=int, default=50)
    parser.add_argument("--profile", type=Path, help="pyinstrument report of the largest point")
    return parser.parse_args(argv)


async def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    counts = (
        tuple(int(c) for c in args.clients.split(","))
        if args.clients
        else (QUICK_CLIENTS if args.quick else DEFAULT_CLIENTS)
    )
    seconds = args.seconds or (5.0 if args.quick else 10.0)
    header("fan-out (issue #9, benchmark 3)", ["bench/fanout.py", *argv])
    print(
        f"{args.cuffs} chairs in session, {args.rate:g} reading events/s for {seconds:g} s "
        "per point; clients decode every message in a second process; latency publish -> "
        "receipt"
    )
    points: list[Point] = []
    scratch = Path(tempfile.mkdtemp(prefix="vitalsd-fanout-clients-"))
    try:
        async with our_server(args.cuffs) as server, floor_server() as floor:
            for clients in counts:
                profile = args.profile if clients == max(counts) else None
                point = await measure_point(
                    server, floor, clients, args.rate, seconds, scratch, profile
                )
                points.append(point)
                print(f"({load()})")
                for line in point.lines():
                    print(line, flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    within = [p.clients for p in points if p.ours.latencies.p99_ms < P99_LIMIT_MS]
    print(
        f"fan-out: most clients measured with ours p99 < {P99_LIMIT_MS:g} ms: "
        f"{max(within) if within else 'none'} (of {', '.join(str(c) for c in counts)})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(sys.argv[1:])))

"""Ingest throughput (issue #9 benchmark 2): cuff readings per second through
`Clinic.ingest_cuff_measurement` (duplicate check, storage, rules, alerts, numbered
events, publication to a subscriber) on SQLite and PostgreSQL.

Floor, same run, same database kind, same engine settings: the rows each ingest stored
that any implementation must store (the reading row and its numbered event rows, with
the event counter bumped) inserted again with plain SQLAlchemy Core, one transaction per
reading, into a copy of the same starting database. Target: ours >= 0.5x the floor.

    .venv/bin/python bench/ingest.py [--quick] [--readings N] [--cuffs N] [--backend sqlite]
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
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import asyncpg
from sqlalchemy import Table, event, insert, select, update
from sqlalchemy.engine import Engine

from bench.harness import header, profiled, ratio, verdict
from devices.bps import BloodPressureMeasurement, PressureUnit
from tests.postgres_cluster import PostgresCluster
from vitalsd.clinic import Actor, Clinic
from vitalsd.cuff_readings import cuff_reading
from vitalsd.domain import Drug, Role, Route
from vitalsd.store import models
from vitalsd.store.engine import create_engine, migrate
from vitalsd.store.events import Event
from vitalsd.store.models import DEFAULT_SITE

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CLINICIAN = Actor("bench.clinician", Role.CLINICIAN)
# One reading in SEVERE_EVERY is >= 180/110 (DESIGN.md thresholds: severe_hypertension),
# so the rules raise and clear alerts during the run, as in a real clinic.
SEVERE_EVERY = 10


class StepClock:
    """The clinic's clock: one second per reading, so every reading has its own time."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 1.0) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def cuff_address(index: int) -> str:
    return f"D0:BE:0C:00:{index // 256:02X}:{index % 256:02X}"


def measurement_of(round_: int, cuff: int) -> BloodPressureMeasurement:
    if (round_ * 7 + cuff) % SEVERE_EVERY == 0:
        systolic, diastolic = 184.0, 112.0
    else:
        systolic, diastolic = 118.0 + (round_ + cuff) % 9, 76.0 + (round_ * 3 + cuff) % 7
    return BloodPressureMeasurement(
        PressureUnit.MMHG,
        systolic,
        diastolic,
        round(diastolic + (systolic - diastolic) / 3),
        pulse_rate=70.0 + cuff % 11,
        user_id=1,
    )


async def populate(url: str, cuffs: int, start: datetime = T0) -> None:
    """A clinic with `cuffs` chairs, each with a cuff and an open session that has a
    baseline reading and a dose (from `start` on), so that readings are post-dose."""
    clock = StepClock(start)
    clinic = Clinic(create_engine(url), clock=clock)
    try:
        for i in range(cuffs):
            patient = await clinic.create_patient(
                f"MRN-{i:04d}", f"Patient {i}", date(1970 + i % 30, 1, 1), by=CLINICIAN
            )
            chair = await clinic.create_chair(f"Chair {i}", by=CLINICIAN)
            await clinic.assign_cuff(chair.id, cuff_address(i), by=CLINICIAN)
            session = await clinic.start_session(patient.id, chair.id, by=CLINICIAN)
            baseline = measurement_of(1, 1)
            await clinic.ingest_cuff_measurement(
                cuff_address(i), cuff_reading(baseline), clock.tick(), bytes(baseline)
            )
            await clinic.record_dose(
                session.id,
                drug=Drug.KETAMINE,
                amount_mg=35.0,
                route=Route.IM,
                by=CLINICIAN,
                given_at=clock.tick(),
            )
    finally:
        await clinic.close()


@dataclass
class Ingested:
    """What our run stored per reading: the reading's id and its events."""

    reading_ids: list[int] = field(default_factory=list)
    events: list[list[Event]] = field(default_factory=list)
    seconds: float = 0.0
    statements: int | None = None


class StatementCount:
    """SQL statements executed on any engine while counting (`before_cursor_execute`)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *_: object) -> None:
        self.count += 1

    def __enter__(self) -> StatementCount:
        event.listen(Engine, "before_cursor_execute", self)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(Engine, "before_cursor_execute", self)


async def run_ours(url: str, cuffs: int, readings: int, count: bool = False) -> Ingested:
    clock = StepClock(T0 + timedelta(hours=1))
    clinic = Clinic(create_engine(url), clock=clock)
    out = Ingested()
    subscription = clinic.bus.subscribe()
    try:
        frames = [
            (cuff_address(n % cuffs), measurement_of(n // cuffs, n % cuffs))
            for n in range(readings)
        ]
        counter = StatementCount() if count else None
        started = time.perf_counter()
        if counter is not None:
            counter.__enter__()
        try:
            for address, m in frames:
                result = await clinic.ingest_cuff_measurement(
                    address, cuff_reading(m), clock.tick(), bytes(m)
                )
                out.reading_ids.append(result.reading.id)
                # The subscriber takes every published event (what /ws would get).
                events = []
                while not subscription.queue.empty():
                    events.append(subscription.queue.get_nowait())
                out.events.append(events)
        finally:
            out.seconds = time.perf_counter() - started
            if counter is not None:
                counter.__exit__()
                out.statements = counter.count
    finally:
        subscription.close()
        await clinic.close()
    return out


async def run_floor(ours_url: str, floor_url: str, ingested: Ingested) -> float:
    """Insert the same reading and event rows with plain Core, one transaction each."""
    reading_table = cast(Table, models.Reading.__table__)
    event_table = cast(Table, models.EventRow.__table__)
    counter = cast(Table, models.EventCounter.__table__)
    source = create_engine(ours_url)
    async with source.connect() as connection:
        rows = {
            row["id"]: dict(row)
            for row in (
                await connection.execute(
                    select(reading_table).where(reading_table.c.id.in_(ingested.reading_ids))
                )
            ).mappings()
        }
    await source.dispose()
    batches = [
        (
            rows[reading_id],
            [{"seq": e.seq, "type": e.type.value, "at": e.at, "data": e.data} for e in events],
        )
        for reading_id, events in zip(ingested.reading_ids, ingested.events, strict=True)
    ]
    engine = create_engine(floor_url)
    try:
        started = time.perf_counter()
        for reading, events in batches:
            async with engine.begin() as connection:
                await connection.execute(
                    update(counter)
                    .where(counter.c.site == DEFAULT_SITE)
                    .values(last_seq=counter.c.last_seq + len(events))
                    .returning(counter.c.last_seq)
                )
                await connection.execute(insert(reading_table), [reading])
                if events:
                    await connection.execute(insert(event_table), events)
        return time.perf_counter() - started
    finally:
        await engine.dispose()


@dataclass(frozen=True)
class Databases:
    """A populated starting database and two fresh copies of it: ours and the floor's."""

    ours: str
    floor: str


Copier = Callable[[], AsyncIterator[Databases]]


@asynccontextmanager
async def sqlite_databases(cuffs: int) -> AsyncIterator[Databases]:
    root = Path(tempfile.mkdtemp(prefix="vitalsd-bench-"))
    try:
        template = root / "template.sqlite3"
        url = f"sqlite+aiosqlite:///{template}"
        await migrate(url)
        await populate(url, cuffs)
        for name in ("ours", "floor"):
            shutil.copyfile(template, root / f"{name}.sqlite3")
        yield Databases(
            f"sqlite+aiosqlite:///{root / 'ours.sqlite3'}",
            f"sqlite+aiosqlite:///{root / 'floor.sqlite3'}",
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


@asynccontextmanager
async def postgres_databases(cuffs: int) -> AsyncIterator[Databases]:
    """A private cluster (tests/postgres_cluster.py): fsync off, as in the test suite; the
    floor runs on the same cluster, so the ratio is fair."""
    cluster = PostgresCluster()
    await asyncio.to_thread(cluster.start)
    try:
        template_url = await asyncio.to_thread(cluster.database)
        await migrate(template_url)
        await populate(template_url, cuffs)
        template = template_url.rsplit("/", 1)[1]
        connection = await asyncpg.connect(
            host="127.0.0.1", port=cluster.port, user=cluster.USER, database="postgres"
        )
        names = []
        try:
            for _ in range(2):
                name = f"b_{uuid.uuid4().hex[:12]}"
                await connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                names.append(name)
        finally:
            await connection.close()
        yield Databases(cluster.url(names[0]), cluster.url(names[1]))
    finally:
        await asyncio.to_thread(cluster.stop)


@dataclass(frozen=True)
class Result:
    backend: str
    readings: int
    ours_per_s: float
    floor_per_s: float
    events: int
    statements: int | None = None

    def line(self) -> str:
        share = ratio(self.ours_per_s, self.floor_per_s)
        counted = (
            ""
            if self.statements is None
            else f", {self.statements / self.readings:.2f} SQL statements per reading"
        )
        return (
            f"ingest {self.backend:10s} readings={self.readings} events={self.events}: "
            f"ours {self.ours_per_s:7.1f}/s, floor (Core insert) {self.floor_per_s:7.1f}/s, "
            f"ours/floor = {share:.2f} ({verdict(share, 0.5, higher_is_better=True)})"
            f"{counted}"
        )


async def measure(
    backend: str,
    cuffs: int,
    readings: int,
    profile: Path | None = None,
    count: bool = False,
) -> Result:
    databases = sqlite_databases if backend == "sqlite" else postgres_databases
    async with databases(cuffs) as dbs:
        with profiled(profile):
            ingested = await run_ours(dbs.ours, cuffs, readings, count)
        floor_seconds = await run_floor(dbs.ours, dbs.floor, ingested)
    return Result(
        backend,
        readings,
        readings / ingested.seconds,
        readings / floor_seconds,
        sum(len(e) for e in ingested.events),
        ingested.statements,
    )


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (about 20 s)")
    parser.add_argument("--cuffs", type=int, default=50)
    parser.add_argument("--readings", type=int, help="readings ingested (default 2000)")
    parser.add_argument(
        "--backend", choices=("sqlite", "postgresql"), action="append", help="default both"
    )
    parser.add_argument(
        "--profile", type=Path, help="write a pyinstrument report of our ingest to this file"
    )
    parser.add_argument(
        "--count-statements",
        action="store_true",
        help="count our SQL statements per reading (a listener on every execute: slower)",
    )
    return parser.parse_args(argv)


async def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    readings = args.readings or (300 if args.quick else 2000)
    header("ingest throughput (issue #9, benchmark 2)", ["bench/ingest.py", *argv])
    print(
        f"{args.cuffs} cuffs on open post-dose sessions, {readings} readings round-robin, "
        f"1 in {SEVERE_EVERY} severe; one subscriber drains the bus"
    )
    for backend in args.backend or ("sqlite", "postgresql"):
        result = await measure(
            backend,
            args.cuffs,
            readings,
            None if args.profile is None else args.profile.with_suffix(f".{backend}.txt"),
            args.count_statements,
        )
        print(result.line(), flush=True)
    return 0


def _main_sync(argv: Sequence[str]) -> Any:
    return asyncio.run(main(argv))


if __name__ == "__main__":
    raise SystemExit(_main_sync(sys.argv[1:]))

"""The soak (issue #9 "Soak"): simulated cuffs with a flaky link, resuming WebSocket
clients and a daemon killed with SIGKILL and restarted, then proof from the database,
the simulator's own measurement log and every client's received events:

- every measurement a cuff took is stored exactly once;
- every client received every event after its first `seq` exactly once, in order;
- every alert that should have been raised was raised, and none twice;
- (printed) the daemon's resident memory over time.

Three processes: the simulator (`sim_process`), the daemon (`daemon_process`, killed
and restarted) and this one (database set-up, clients, kills, checks). `make soak`
(`bench/soak.py`) runs the long plan; `tests/soak/test_soak.py` a short one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import socket
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy
import sqlalchemy.orm
from sqlalchemy import select
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from tests.soak.clock import shared_clock
from tests.soak.sim_process import DOSED_BEFORE, soak_configs
from vitalsd.auth import TokenIssuer
from vitalsd.clinic import Actor, Clinic
from vitalsd.domain import Drug, ReadingFlag, Role, Route
from vitalsd.settings import Settings
from vitalsd.store import models
from vitalsd.store.events import EventType

REPO = Path(__file__).resolve().parents[2]
SECRET = "soak-token-secret-soak-token-secret-0123"
CLINICIAN = Actor("soak.clinician", Role.CLINICIAN)
# Every stored event type: the clients skip only the live-only `cuff_pressure` (about
# one a second per inflating cuff, never numbered), so their `seq`s must be gapless.
STORED_TYPES = ",".join(
    t.value for t in EventType if t not in (EventType.SNAPSHOT, EventType.CUFF_PRESSURE)
)
# DESIGN.md "Thresholds": severe >= 180/110; hypotension below 90 systolic or 60 diastolic.
SEVERE = (180.0, 110.0)
HYPOTENSION = (90.0, 60.0)
# A reading flagged for movement, a loose cuff or position raises only a remeasure
# prompt and a severe alert (vitalsd.thresholds).
REMEASURE_FLAGS = frozenset(
    {ReadingFlag.BODY_MOVEMENT.value, ReadingFlag.CUFF_TOO_LOOSE.value}
    | {ReadingFlag.IMPROPER_POSITION.value}
)
# Guards against a hang, never timing assertions.
START_TIMEOUT_S = 90.0
COMMAND_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class SoakPlan:
    """What one soak run does; durations are simulated unless named `_s` (real)."""

    cuffs: int = 8
    clients: int = 5
    speed: float = 60.0
    simulated: timedelta = timedelta(minutes=40)
    kills: int = 2
    interval: timedelta = timedelta(minutes=3)
    flaky_every: timedelta = timedelta(minutes=8)
    flaky_lasting: timedelta = timedelta(minutes=3)
    severe_every: int = 4
    hypotensive_every: int = 4
    seed: int = 1
    client_stay_s: float = 4.0  # mean real seconds a client stays before it drops
    drain_timeout_s: float = 90.0

    @property
    def run_s(self) -> float:
        return self.simulated.total_seconds() / self.speed


@dataclass
class SoakResult:
    """The counts issue #9 asks to print, and every violation found."""

    measurements_taken: int = 0
    readings_stored: int = 0
    duplicated: int = 0
    missing: int = 0
    missing_held: int = 0  # of the missing, still held by their cuff after the drain
    unattached: int = 0  # cuff readings stored outside their chair's open session
    events_expected: list[int] = field(default_factory=list)  # per client
    events_received: list[int] = field(default_factory=list)
    client_reconnects: int = 0
    client_failures: Counter[str] = field(default_factory=Counter)
    alerts_due: int = 0  # (reading, kind) pairs the thresholds call for
    alerts_raised: int = 0
    alerts_missing: int = 0
    alerts_twice: int = 0
    kills: int = 0
    restarts_survived: int = 0
    rss_kib: list[tuple[int, float, int]] = field(default_factory=list)  # (run, s, KiB)
    phases_s: dict[str, float] = field(default_factory=dict)  # real seconds per phase
    problems: list[str] = field(default_factory=list)

    def memory_growth(self) -> tuple[int, int, float] | None:
        """(KiB a quarter into the longest daemon run, KiB at its end, ratio)."""
        by_run: dict[int, list[tuple[float, int]]] = defaultdict(list)
        for run, at, kib in self.rss_kib:
            by_run[run].append((at, kib))
        if not by_run:
            return None
        samples = max(by_run.values(), key=len)
        early = samples[len(samples) // 4][1]
        late = samples[-1][1]
        return early, late, late / early if early else float("nan")

    def lines(self) -> list[str]:
        growth = self.memory_growth()
        memory = (
            "no samples"
            if growth is None
            else f"{growth[0] / 1024:.1f} MiB a quarter into the longest run -> "
            f"{growth[1] / 1024:.1f} MiB at its end ({growth[2]:.2f}x); "
            f"max {max(k for _, _, k in self.rss_kib) / 1024:.1f} MiB"
        )
        return [
            f"measurements: taken {self.measurements_taken}, stored {self.readings_stored}, "
            f"duplicated {self.duplicated}, missing {self.missing} ({self.missing_held} still "
            f"held by their cuff after the drain); stored outside their "
            f"session (unattached) {self.unattached}",
            f"events per client: expected {self.events_expected}, "
            f"received {self.events_received} ({self.client_reconnects} reconnects in all; "
            f"sessions cut short: {dict(self.client_failures) or 'none'})",
            f"alerts: due {self.alerts_due} (reading x kind), raised {self.alerts_raised}, "
            f"missing {self.alerts_missing}, raised twice {self.alerts_twice}",
            f"daemon: killed {self.kills} times, restarts survived {self.restarts_survived}",
            f"daemon memory (RSS): {memory}",
            "phases (real s): " + ", ".join(f"{k} {v:.1f}" for k, v in self.phases_s.items()),
            f"problems: {len(self.problems)}",
            *(f"  - {p}" for p in self.problems[:20]),
        ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Child:
    """A child process speaking lines on stdin/stdout (stderr to a log file)."""

    def __init__(self, argv: Sequence[str], log: Path) -> None:
        self.argv = list(argv)
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> str:
        """Start it; return its first stdout line (its `ready ...`)."""
        with self.log.open("ab") as err:
            self.process = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                cwd=REPO,
                start_new_session=True,
            )
        line = await self.read_line(START_TIMEOUT_S)
        if not line.startswith("ready"):
            raise RuntimeError(f"{self.argv[2]} did not start: {line!r}; see {self.log}")
        return line

    async def read_line(self, timeout_s: float) -> str:
        assert self.process is not None and self.process.stdout is not None
        return (await asyncio.wait_for(self.process.stdout.readline(), timeout_s)).decode().strip()

    async def tell(self, command: str) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(f"{command}\n".encode())
        await self.process.stdin.drain()

    async def ask(self, command: str, timeout_s: float = COMMAND_TIMEOUT_S) -> str:
        await self.tell(command)
        return await self.read_line(timeout_s)

    def close_stdin(self) -> None:
        if self.process is not None and self.process.stdin is not None:
            self.process.stdin.close()

    async def wait(self, timeout_s: float) -> None:
        if self.process is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), timeout_s)

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def rss_kib(self) -> int | None:
        if self.process is None or self.process.returncode is not None:
            return None
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()

    async def stop(self, timeout_s: float = 30.0) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), timeout_s)
        except TimeoutError:
            await self.kill()


def _failure(error: BaseException) -> str:
    if isinstance(error, ConnectionClosed) and error.rcvd is not None:
        return f"closed {error.rcvd.code}"
    return type(error).__name__


class ResumingClient:
    """A tablet: connects, stays a random while, drops, and resumes with `?since=`."""

    def __init__(self, url: str, rng: random.Random, stay_s: float) -> None:
        self.url = url
        self.rng = rng
        self.stay_s = stay_s
        self.received: list[int] = []
        self.first: int | None = None  # the first seq owed: the first snapshot's + 1
        self.last: int | None = None  # resume point: the highest seq received
        self.reconnects = 0
        self.failures: Counter[str] = Counter()  # why sessions ended early, by kind

    def _url(self) -> str:
        return self.url if self.last is None else f"{self.url}&since={self.last}"

    def _take(self, raw: str | bytes) -> None:
        message = json.loads(raw)
        if message["type"] == EventType.SNAPSHOT.value:
            if self.last is None:
                self.last = int(message["data"]["seq"])
                self.first = self.last + 1
            return
        seq = message.get("seq")
        if seq is None:
            return
        self.received.append(int(seq))
        self.last = max(self.last or 0, int(seq))

    async def _session(
        self, until: float | None, target: int | None, stop: asyncio.Event | None = None
    ) -> None:
        async with connect(self._url(), open_timeout=5, close_timeout=2) as websocket:
            loop = asyncio.get_running_loop()
            while stop is None or not stop.is_set():
                if target is not None and self.last is not None and self.last >= target:
                    return
                remaining = None if until is None else until - loop.time()
                if remaining is not None and remaining <= 0:
                    return
                wait = 1.0 if remaining is None else min(1.0, remaining)
                with contextlib.suppress(TimeoutError):
                    self._take(await asyncio.wait_for(websocket.recv(), wait))

    async def roam(self, stop: asyncio.Event) -> None:
        """Connect and drop at random until `stop`."""
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            stay = self.rng.expovariate(1 / self.stay_s)
            try:
                await self._session(loop.time() + stay, None, stop)
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as error:
                self.failures[_failure(error)] += 1
                await asyncio.sleep(0.3)
            self.reconnects += 1

    async def catch_up(self, target: int, timeout_s: float) -> None:
        """Resume once more and read until `target` has arrived."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self.last is None or self.last < target:
            if asyncio.get_running_loop().time() > deadline:
                return
            with contextlib.suppress(OSError, ConnectionClosed, InvalidHandshake, TimeoutError):
                await self._session(deadline, target)
            if self.last is None or self.last < target:
                await asyncio.sleep(0.3)


async def set_up_clinic(plan: SoakPlan, data_dir: Path, clock_args: tuple[float, datetime]) -> None:
    """A chair, patient and open session per cuff; the severe patients' doses recorded
    (the simulator doses the same patients at the same moment)."""
    settings = Settings(data_dir=data_dir, token_secret=SECRET)  # type: ignore[arg-type]
    clock = shared_clock(plan.speed, *clock_args)
    clinic = await Clinic.open(settings, clock=clock.now)
    try:
        await clinic.create_user("nurse", "not-a-hash: tokens are issued directly", Role.NURSE)
        configs = soak_configs(plan.cuffs, plan.seed, plan.severe_every, plan.hypotensive_every)
        epoch_sim = clock_args[1]
        for index, config in enumerate(configs):
            chair = await clinic.create_chair(f"Chair {index + 1}", by=CLINICIAN)
            await clinic.assign_cuff(chair.id, config.address, by=CLINICIAN)
            patient = await clinic.create_patient(
                f"SOAK-{index:03d}", f"Soak patient {index + 1}", date(1970, 1, 1), by=CLINICIAN
            )
            session = await clinic.start_session(
                patient.id, chair.id, by=CLINICIAN, started_at=epoch_sim - timedelta(minutes=40)
            )
            if config.high_responder:
                await clinic.record_dose(
                    session.id,
                    drug=Drug.KETAMINE,
                    amount_mg=50.0,
                    route=Route.IM,
                    by=CLINICIAN,
                    given_at=epoch_sim - DOSED_BEFORE,
                )
    finally:
        await clinic.close()


def sync_engine(data_dir: Path) -> sqlalchemy.Engine:
    return sqlalchemy.create_engine(f"sqlite:///{data_dir / 'vitalsd.sqlite3'}")


def last_seq(engine: sqlalchemy.Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(models.EventCounter.last_seq)).scalar_one())


def _value(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def check_storage(
    log: list[dict[str, Any]],
    engine: sqlalchemy.Engine,
    result: SoakResult,
    held: dict[str, list[int]] | None = None,
    standing: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Per cuff, the multiset of measured values equals the multiset stored. `held`: the
    sequence numbers each cuff still held at the end of the drain; `standing`: how each
    cuff stood then (its record style, link, advertising), both for the message only."""

    def value_key(r: dict[str, Any]) -> tuple[Any, ...]:
        return (
            r["address"],
            _value(r["systolic"]),
            _value(r["diastolic"]),
            _value(r["pulse_rate"]),
        )

    measured: Counter[tuple[Any, ...]] = Counter(value_key(r) for r in log)
    with sqlalchemy.orm.Session(engine) as session:
        rows = session.scalars(select(models.Reading).where(models.Reading.source == "cuff"))
        stored: Counter[tuple[Any, ...]] = Counter(
            (
                (r.device_address or "").upper(),
                _value(r.systolic),
                _value(r.diastolic),
                _value(r.pulse_rate),
            )
            for r in rows
        )
        result.unattached = int(
            session.scalar(
                select(sqlalchemy.func.count())
                .select_from(models.Reading)
                .where(models.Reading.source == "cuff", models.Reading.session_id.is_(None))
            )
            or 0
        )
    result.measurements_taken = len(log)
    result.readings_stored = sum(stored.values())
    result.duplicated = sum(max(0, n - measured[key]) for key, n in stored.items())
    result.missing = sum(max(0, n - stored[key]) for key, n in measured.items())
    if result.duplicated:
        result.problems.append(f"{result.duplicated} measurement(s) stored more than once")
    if result.missing:
        lost = [k for k, n in measured.items() if stored[k] < n]
        keys = {value_key(r): r for r in log}
        # Of each lost value, how many measurements their cuff still holds: a BPS 1.0 cuff
        # until a central confirms them, a BPS 1.1 cuff every record it keeps.
        held_seqs: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        for r in log:
            if held is not None and r["sequence_number"] in held.get(r["address"], []):
                held_seqs[value_key(r)].append(r["sequence_number"])
        still = sum(min(measured[k] - stored[k], len(held_seqs[k])) for k in lost)
        result.missing_held = still
        cuffs = sorted({k[0] for k in lost})
        result.problems.append(
            f"{result.missing} measurement(s) never stored ({still} still held by their cuff "
            f"at the end of the drain), "
            f"e.g. {[(k[0], keys[k]['sequence_number'], keys[k]['cuff_time']) for k in lost[:4]]}; "
            f"those cuffs then: {[(a, (standing or {}).get(a)) for a in cuffs]}; "
            f"the daemon's controller then: {(standing or {}).get('central')}"
        )


def check_clients(clients: Sequence[ResumingClient], target: int, result: SoakResult) -> None:
    """Each client: every seq from its first to the end, once each, in order."""
    for index, client in enumerate(clients):
        if client.first is None:
            result.problems.append(f"client {index}: never received its first snapshot")
        first = client.first if client.first is not None else target + 1
        expected = list(range(first, target + 1))
        got = [s for s in client.received if s <= target]
        result.events_expected.append(len(expected))
        result.events_received.append(len(got))
        result.client_reconnects += client.reconnects
        result.client_failures.update(client.failures)
        if got != expected:
            dupes = len(got) - len(set(got))
            gaps = len(set(expected) - set(got))
            disorder = sum(1 for a, b in itertools.pairwise(got) if b <= a)
            result.problems.append(
                f"client {index}: {len(got)} events for {len(expected)} owed "
                f"({dupes} duplicated, {gaps} missing, {disorder} out of order)"
            )


def check_alerts(engine: sqlalchemy.Engine, result: SoakResult) -> None:
    """Every valid session reading in the severe or hypotension range has an alert of
    that kind open when it was stored (raised by it or before it); no condition has two
    alerts open at once; every alert was announced by exactly one `alert` event."""
    with sqlalchemy.orm.Session(engine) as session:
        readings = list(
            session.scalars(
                select(models.Reading).where(
                    models.Reading.valid.is_(True), models.Reading.session_id.is_not(None)
                )
            )
        )
        alerts = list(session.scalars(select(models.Alert)))
        announced = Counter(
            int(data["id"])
            for data in session.scalars(
                select(models.EventRow.data).where(models.EventRow.type == EventType.ALERT.value)
            )
        )
    by_kind: dict[tuple[int | None, str], list[models.Alert]] = defaultdict(list)
    for alert in alerts:
        by_kind[(alert.session_id, alert.kind)].append(alert)
    for reading in readings:
        assert reading.systolic is not None and reading.diastolic is not None
        due = []
        if reading.systolic >= SEVERE[0] or reading.diastolic >= SEVERE[1]:
            due.append("severe_hypertension")
        flagged = bool(REMEASURE_FLAGS & set(reading.flags))
        if not flagged and (
            reading.systolic < HYPOTENSION[0] or reading.diastolic < HYPOTENSION[1]
        ):
            due.append("hypotension")
        for kind in due:
            result.alerts_due += 1
            covering = [
                a
                for a in by_kind[(reading.session_id, kind)]
                if a.raised_at <= reading.received_at
                and (a.resolved_at is None or a.resolved_at >= reading.received_at)
            ]
            if not covering:
                result.alerts_missing += 1
                result.problems.append(
                    f"reading {reading.id} ({reading.systolic:g}/{reading.diastolic:g}) in "
                    f"session {reading.session_id}: no {kind} alert open when it was stored"
                )
    result.alerts_raised = len(alerts)
    for (session_id, _kind), group in by_kind.items():
        by_condition: dict[str, list[models.Alert]] = defaultdict(list)
        for alert in group:
            by_condition[alert.condition].append(alert)
        for condition, same in by_condition.items():
            same.sort(key=lambda a: (a.raised_at, a.id))
            for before, after in itertools.pairwise(same):
                if before.resolved_at is None or before.resolved_at > after.raised_at:
                    result.alerts_twice += 1
                    result.problems.append(
                        f"session {session_id}: alerts {before.id} and {after.id} both open "
                        f"for {condition}"
                    )
    for alert in alerts:
        if announced[alert.id] != 1:
            result.alerts_twice += announced[alert.id] > 1
            result.problems.append(f"alert {alert.id} announced {announced[alert.id]} times")


async def sample_memory(daemon: Child, run: list[int], result: SoakResult) -> None:
    started = time.monotonic()
    while True:
        kib = daemon.rss_kib()
        if kib is not None:
            result.rss_kib.append((run[0], time.monotonic() - started, kib))
        await asyncio.sleep(1.0)


async def kill_and_restart(
    daemon: Child, plan: SoakPlan, rng: random.Random, run: list[int], result: SoakResult
) -> None:
    """SIGKILL the daemon at `plan.kills` random moments and start it again each time."""
    window = plan.run_s
    moments = sorted(rng.uniform(0.15 * window, 0.85 * window) for _ in range(plan.kills))
    started = time.monotonic()
    for moment in moments:
        await asyncio.sleep(max(0.0, started + moment - time.monotonic()))
        await daemon.kill()
        result.kills += 1
        await asyncio.sleep(rng.uniform(0.2, 1.0))
        await daemon.start()
        run[0] += 1
        result.restarts_survived += 1


def missing_measurements(log: list[dict[str, Any]], engine: sqlalchemy.Engine) -> int:
    probe = SoakResult()
    check_storage(log, engine, probe)
    return probe.missing


# The drain stops early when the stored readings stop changing for this long.
DRAIN_SETTLE_S = 20.0


async def wait_for_storage(
    log: list[dict[str, Any]], engine: sqlalchemy.Engine, timeout_s: float
) -> None:
    """Until every measurement is stored, or nothing more arrives for `DRAIN_SETTLE_S`,
    or `timeout_s`: the cuffs are back in range and the daemon collects what they kept."""
    deadline = time.monotonic() + timeout_s
    missing = missing_measurements(log, engine)
    changed = time.monotonic()
    while missing and time.monotonic() < min(deadline, changed + DRAIN_SETTLE_S):
        await asyncio.sleep(0.5)
        now_missing = missing_measurements(log, engine)
        if now_missing != missing:
            missing, changed = now_missing, time.monotonic()


async def run_soak(plan: SoakPlan, workdir: Path, *, echo: bool = False) -> SoakResult:
    """Run `plan` in `workdir` (the database, the logs) and check it."""
    result = SoakResult()
    rng = random.Random(plan.seed)
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    epoch_real = time.time()
    epoch_sim = datetime.now(UTC).replace(microsecond=0)
    clock_args = (epoch_real, epoch_sim)
    marks = [time.monotonic()]

    def phase(name: str) -> None:
        marks.append(time.monotonic())
        result.phases_s[name] = marks[-1] - marks[-2]

    await set_up_clinic(plan, data_dir, clock_args)
    phase("set-up")
    hci_port, http_port = free_port(), free_port()
    timing = [
        f"--speed={plan.speed}",
        f"--epoch-real={epoch_real}",
        f"--epoch-sim={epoch_sim.isoformat()}",
    ]
    sim = Child(
        [
            sys.executable,
            "-m",
            "tests.soak.sim_process",
            f"--count={plan.cuffs}",
            f"--seed={plan.seed}",
            f"--port={hci_port}",
            f"--out={workdir / 'measured.json'}",
            f"--interval-minutes={plan.interval.total_seconds() / 60}",
            f"--flaky-every-minutes={plan.flaky_every.total_seconds() / 60}",
            f"--flaky-lasting-minutes={plan.flaky_lasting.total_seconds() / 60}",
            f"--severe-every={plan.severe_every}",
            f"--hypotensive-every={plan.hypotensive_every}",
            *timing,
        ],
        workdir / "simulator.log",
    )
    daemon = Child(
        [
            sys.executable,
            "-m",
            "tests.soak.daemon_process",
            f"--data-dir={data_dir}",
            f"--port={http_port}",
            f"--ble=tcp-client:127.0.0.1:{hci_port}",
            f"--secret={SECRET}",
            *timing,
        ],
        workdir / "daemon.log",
    )
    token = TokenIssuer(SECRET.encode(), timedelta(hours=8)).issue(
        "nurse", Role.NURSE, datetime.now(UTC)
    )
    url = f"ws://127.0.0.1:{http_port}/ws?token={token}&types={STORED_TYPES}"
    clients = [
        ResumingClient(url, random.Random(rng.random()), plan.client_stay_s)
        for _ in range(plan.clients)
    ]
    engine = sync_engine(data_dir)
    stop = asyncio.Event()
    run = [0]
    background: list[asyncio.Task[Any]] = []
    try:
        await sim.start()
        await daemon.start()
        phase("start")
        background.append(asyncio.create_task(sample_memory(daemon, run, result)))
        roaming = [asyncio.create_task(c.roam(stop)) for c in clients]
        await asyncio.gather(
            asyncio.sleep(plan.run_s), kill_and_restart(daemon, plan, rng, run, result)
        )
        phase("run")
        await sim.ask("quiesce")
        if (await sim.ask("dump")) != "dumped":
            raise RuntimeError(f"the simulator did not write its log; see {sim.log}")
        dumped = json.loads((workdir / "measured.json").read_text())
        log = dumped["measured"]
        await wait_for_storage(log, engine, plan.drain_timeout_s)
        phase("drain")
        if missing_measurements(log, engine) and daemon.pid is not None:
            # Where each of the daemon's tasks waits, into its log (daemon_process).
            with contextlib.suppress(ProcessLookupError):
                os.kill(daemon.pid, signal.SIGUSR1)
            await asyncio.sleep(0.5)
        # What the cuffs still hold, and how they stand, once the drain gave up.
        if (await sim.ask("dump")) != "dumped":
            raise RuntimeError(f"the simulator did not write its log; see {sim.log}")
        dumped = json.loads((workdir / "measured.json").read_text())
        held, standing = dumped["held"], {**dumped["cuffs"], "central": dumped["central"]}
        target = last_seq(engine)
        stop.set()
        await asyncio.gather(*roaming)
        await asyncio.gather(*(c.catch_up(target, plan.drain_timeout_s) for c in clients))
        phase("catch-up")
    finally:
        for task in background:
            task.cancel()
        await daemon.stop()
        phase("daemon stop")
        with contextlib.suppress(Exception):
            await sim.tell("stop")
            sim.close_stdin()  # ends the simulator's stdin reader thread too
            await sim.wait(15.0)
        await sim.stop()
    phase("simulator stop")
    check_storage(log, engine, result, held, standing)
    check_clients(clients, target, result)
    check_alerts(engine, result)
    engine.dispose()
    if result.restarts_survived != result.kills:
        result.problems.append(
            f"the daemon came back {result.restarts_survived} of {result.kills} times"
        )
    if echo:
        for line in result.lines():
            print(line, flush=True)
    return result

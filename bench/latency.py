"""Alert latency, end to end (issue #9 benchmark 1): from a simulated cuff sending a Blood
Pressure Measurement indication to a WebSocket client receiving the `reading` event
and, for a severe reading, the `alert` event.

Ours: the real daemon (`vitalsd.daemon.Daemon`: supervisor, Bleak-on-Bumble links,
clinic on SQLite, uvicorn) with simulated cuffs on an in-process virtual radio, as
`vitalsd demo` runs it; one in five cuffs is a hypertensive high responder already
dosed, so its readings are severe (>= 180/110, DESIGN.md thresholds). A bench nurse
resolves each severe alert half a second after it is raised, so the next severe reading
raises a new one. The clients (a second process) subscribe with `?types=reading,alert`
(a nurse's pager view). The send time is stamped where the cuff hands the indication to
its Bumble stack; receipt where a client decodes the event; both on CLOCK_MONOTONIC.

Floors, same run: (1) the one-way indication latency over the same virtual link alone (a
simulated cuff and a bare Bumble central, nothing else running); (2) a bare `websockets`
broadcast of the same JSON texts, at the same moments, to the same number of clients in
a second process. Floor p99 = link p99 + broadcast p99. Target (issue #9): alert p99
within 1.5x the floor at 50 cuffs / 500 clients.

    .venv/bin/python bench/latency.py [--quick] [--configs 6x1,50x100,50x500] [--seconds 40]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import contextlib
import logging
import shutil
import tempfile
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, timedelta
from typing import Any

from bumble.device import Connection
from bumble.gatt import Characteristic
from pydantic import SecretStr

from bench.fanout import floor_server
from bench.harness import Latencies, header, load, profiled, ratio, verdict
from bench.ws_clients import ClientFleet, Received
from devices.bps import BloodPressureMeasurement
from devices.bumble_backend import BumbleHost
from simulators.clock import SimClock
from simulators.cuff import CuffConfig, SimulatedCuff
from simulators.physiology import Profile
from simulators.radio import VirtualRadio
from tests.simulators.bumble_central import BumbleCentral
from vitalsd.auth import TokenIssuer
from vitalsd.clinic import Actor, Clinic
from vitalsd.daemon import Daemon
from vitalsd.domain import AlertKind, Drug, Role, Route
from vitalsd.notify.config import NotifySettings
from vitalsd.settings import Settings
from vitalsd.store.events import EventType

SECRET = "bench-latency-secret-bench-latency-secret"
# Simulated seconds per real second: a 35 s measurement takes 3.5 s, and the severe
# patients stay in their dose response (90-120 simulated minutes) for the whole run.
SPEED = 10.0
SEVERE_EVERY = 5  # one cuff in five reads severe
NURSE = Actor("nurse", Role.NURSE)
CLINICIAN = Actor("bench.clinician", Role.CLINICIAN)
CENTRAL_ADDRESS = "C0:BE:00:00:00:01"
MEASUREMENT_UUID = 0x2A35
WANTED = "reading,alert"


class StampedCuff(SimulatedCuff):
    """A simulated cuff that notes when it hands each Measurement indication to its
    stack (the start of the end-to-end latency)."""

    sent: list[tuple[float, bytes]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent = []

    async def _indicate(
        self, connection: Connection, characteristic: Characteristic[Any], value: bytes
    ) -> bool:
        stamp = time.monotonic()
        delivered = await super()._indicate(connection, characteristic, value)
        if delivered and characteristic is self._measurement_characteristic:
            self.sent.append((stamp, bytes(value)))
        return delivered


def cuff_configs(count: int) -> list[CuffConfig]:
    configs = []
    for index in range(count):
        severe = index % SEVERE_EVERY == SEVERE_EVERY - 1
        configs.append(
            CuffConfig(
                address=f"D0:BE:00:00:{index // 256:02X}:{index % 256:02X}",
                local_name=f"SIM-BP {index + 1}",
                serial=f"BENCH-{index + 1:03d}",
                profile=Profile.HYPERTENSIVE if severe else Profile.NORMOTENSIVE,
                high_responder=severe,
                seed=index,
            )
        )
    return configs


# -- floor 1: the virtual link alone -------------------------------------------------


async def link_floor(indications: int) -> Latencies:
    """One simulated cuff, one bare Bumble central (tests/simulators/bumble_central.py),
    nothing else: indication handed to the cuff's stack -> central's callback."""
    radio = VirtualRadio()
    clock = SimClock(6000.0)  # the inflation trace passes at once
    cuff = StampedCuff(cuff_configs(1)[0], clock=clock, link=radio.link)
    central = BumbleCentral(radio.add_central_controller("floor-central"))
    received: list[float] = []
    try:
        await cuff.start()
        await central.start()
        session = await central.connect(cuff.address)
        await session.pair()
        await session.characteristic(MEASUREMENT_UUID).subscribe(
            lambda _value: received.append(time.monotonic()), prefer_notify=False
        )
        for _ in range(indications):
            await cuff.measure()
        await asyncio.sleep(0.1)
    finally:
        await central.close()
        await cuff.stop()
        await radio.close()
    return Latencies.of_seconds([r - s for (s, _), r in zip(cuff.sent, received, strict=False)])


# -- ours ------------------------------------------------------------------------------


@dataclass
class Capture:
    """What the daemon published that the clients want: text and when, in order."""

    groups: list[tuple[float, str, int]] = field(default_factory=list)
    readings: dict[int, dict[str, Any]] = field(default_factory=dict)  # reading id -> data
    reading_seq: dict[int, int] = field(default_factory=dict)  # event seq -> reading id
    alert_seq: dict[int, int] = field(default_factory=dict)  # event seq -> reading id


async def capture_events(clinic: Clinic, capture: Capture) -> None:
    """A subscriber inside the daemon: notes reading and alert events, and plays the nurse
    who resolves a severe alert half a second after it is raised."""
    async with clinic.bus.subscribe() as subscription:
        async for event in subscription:
            if event.type not in (EventType.READING, EventType.ALERT) or event.seq is None:
                continue
            capture.groups.append((time.monotonic(), event.text, event.seq))
            data = event.data
            if event.type is EventType.READING:
                capture.readings[data["id"]] = data
                capture.reading_seq[event.seq] = data["id"]
            elif data.get("reading_id") is not None:
                capture.alert_seq[event.seq] = data["reading_id"]
                if data["kind"] == AlertKind.SEVERE_HYPERTENSION.value:
                    asyncio.get_running_loop().call_later(
                        0.5, _resolve_soon, clinic, int(data["id"])
                    )


_resolving: set[asyncio.Task[Any]] = set()


def _resolve_soon(clinic: Clinic, alert_id: int) -> None:
    async def resolve(alert_id: int) -> None:
        with contextlib.suppress(Exception):
            await clinic.resolve_alert(alert_id, "bench nurse: seen, treated", by=NURSE)

    task = asyncio.get_running_loop().create_task(resolve(alert_id))
    _resolving.add(task)
    task.add_done_callback(_resolving.discard)


@dataclass
class RunningClinic:
    """The running daemon with its cuffs: what a latency run drives."""

    url: str
    clinic: Clinic
    cuffs: list[StampedCuff]
    capture: Capture


@contextlib.asynccontextmanager
async def running_daemon(
    cuff_count: int, notify: NotifySettings | None = None
) -> AsyncIterator[RunningClinic]:
    """`notify`: alert channels (bench/notify.py); default none."""
    root = Path(tempfile.mkdtemp(prefix="vitalsd-latency-"))
    settings = Settings(
        data_dir=root,
        host="127.0.0.1",
        port=0,
        token_secret=SecretStr(SECRET),
        max_streams_per_user=1_000_000,  # every client signs in as the one nurse (#17)
        ws_token_in_url=True,  # its clients sign in with /ws?token=
        notify=notify or NotifySettings(),
    )
    clock = SimClock(SPEED)
    clinic = await Clinic.open(settings, clock=clock.now)
    radio = VirtualRadio()
    cuffs = [StampedCuff(c, clock=clock, link=radio.link) for c in cuff_configs(cuff_count)]
    central: BumbleHost | None = None
    capture = Capture()
    tasks: list[asyncio.Task[Any]] = []
    try:
        await clinic.create_user("nurse", "not-a-real-hash", Role.NURSE)
        now = clock.now()
        dosed: list[tuple[StampedCuff, int]] = []
        for index, cuff in enumerate(cuffs):
            await cuff.start()
            chair = await clinic.create_chair(f"Chair {index + 1}", by=CLINICIAN)
            await clinic.assign_cuff(chair.id, cuff.address, by=CLINICIAN)
            patient = await clinic.create_patient(
                f"BENCH-{index:03d}", f"Patient {index + 1}", date(1970, 1, 1), by=CLINICIAN
            )
            session = await clinic.start_session(
                patient.id, chair.id, by=CLINICIAN, started_at=now - timedelta(minutes=40)
            )
            if cuff.config.high_responder:
                dosed.append((cuff, session.id))
        # Dosed last, so that the run falls in the response's peak (30-40 minutes after
        # the dose, lasting 90-120 simulated minutes: simulators/physiology.py).
        given = clock.now() - timedelta(minutes=30)
        for cuff, session_id in dosed:
            cuff.record_dose(given)
            await clinic.record_dose(
                session_id,
                drug=Drug.KETAMINE,
                amount_mg=50.0,
                route=Route.IM,
                by=CLINICIAN,
                given_at=given,
            )
        central = await BumbleHost.on_link(radio.link, address=CENTRAL_ADDRESS)
        daemon = Daemon(settings, clinic, ble=central, clock=clock.now, zone=UTC)
        ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        tasks.append(asyncio.create_task(daemon.run(on_ready=ready.set_result)))
        tasks.append(asyncio.create_task(capture_events(clinic, capture)))
        base = await asyncio.wait_for(ready, 60)
        token = TokenIssuer(SECRET.encode(), timedelta(hours=8)).issue(
            "nurse", Role.NURSE, clinic.now()
        )
        url = base.replace("http://", "ws://") + f"ws?token={token}&types={WANTED}"
        yield RunningClinic(url, clinic, cuffs, capture)
        daemon.stop()
        await asyncio.wait_for(tasks[0], 60)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if central is not None:
            with contextlib.suppress(Exception):
                await central.close()
        for cuff in cuffs:
            with contextlib.suppress(Exception):
                await cuff.stop()
        await radio.close()
        await clinic.close()
        shutil.rmtree(root, ignore_errors=True)


async def warm_up(daemon: RunningClinic, timeout_s: float) -> None:
    """One measurement per cuff, then wait until each is a stored reading: every link is
    connected, bonded and subscribed before the clock starts."""
    before = len(daemon.capture.readings)
    await asyncio.gather(*(cuff.measure() for cuff in daemon.cuffs))
    deadline = time.monotonic() + timeout_s
    while len(daemon.capture.readings) < before + len(daemon.cuffs):
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"only {len(daemon.capture.readings) - before} of {len(daemon.cuffs)} cuffs "
                f"delivered a reading within {timeout_s:g} s"
            )
        await asyncio.sleep(0.1)


def measuring_order(cuffs: Sequence[StampedCuff]) -> list[StampedCuff]:
    """Every other measurement on a severe cuff (so that alerts are measured often enough
    for a p99), the others round-robin over the rest."""
    severe = [c for c in cuffs if c.config.high_responder]
    normal = [c for c in cuffs if not c.config.high_responder]
    if not severe or not normal:
        return list(cuffs)
    order: list[StampedCuff] = []
    for i in range(max(len(severe), len(normal))):
        order += [severe[i % len(severe)], normal[i % len(normal)]]
    return order


async def drive_measurements(cuffs: Sequence[StampedCuff], rate: float, seconds: float) -> None:
    """Start a measurement `rate` times a second, on the next cuff in `measuring_order`
    that is idle."""
    order = measuring_order(cuffs)
    running: dict[str, asyncio.Task[Any]] = {}
    started = time.monotonic()
    n = 0
    while time.monotonic() - started < seconds:
        cuff = order[n % len(order)]
        if cuff.address not in running or running[cuff.address].done():
            running[cuff.address] = asyncio.create_task(cuff.measure())
        n += 1
        await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
    await asyncio.gather(*running.values(), return_exceptions=True)


def indication_stamps(daemon: RunningClinic) -> dict[int, float]:
    """Reading id -> when its indication was sent: per cuff, readings and indications in
    the same order, checked value by value."""
    sent: dict[str, deque[tuple[float, float, float]]] = defaultdict(deque)
    for cuff in daemon.cuffs:
        for stamp, payload in cuff.sent:
            m = BloodPressureMeasurement.from_bytes(payload)
            sent[cuff.address.upper()].append((stamp, m.systolic, m.diastolic))
    stamps: dict[int, float] = {}
    for reading_id in sorted(daemon.capture.readings):
        data = daemon.capture.readings[reading_id]
        queue = sent.get(str(data.get("device_address") or "").upper())
        while queue:
            stamp, systolic, diastolic = queue.popleft()
            if (systolic, diastolic) == (data["systolic"], data["diastolic"]):
                stamps[reading_id] = stamp
                break
    return stamps


def published_latencies(daemon: RunningClinic, since_seq: int) -> Latencies:
    """Indication sent -> its `reading` event published inside the daemon (the Bluetooth
    and ingest share of the end-to-end latency)."""
    stamps = indication_stamps(daemon)
    capture = daemon.capture
    return Latencies.of_seconds(
        [
            at - stamps[capture.reading_seq[seq]]
            for at, _, seq in capture.groups
            if seq > since_seq and seq in capture.reading_seq and capture.reading_seq[seq] in stamps
        ]
    )


def latencies_by_type(
    received: Received, daemon: RunningClinic, since_seq: int
) -> tuple[Latencies, Latencies]:
    stamps = indication_stamps(daemon)
    readings: list[float] = []
    alerts: list[float] = []
    capture = daemon.capture
    for client in received:
        for seq, t in client:
            if seq is None or seq <= since_seq:
                continue
            if seq in capture.reading_seq and capture.reading_seq[seq] in stamps:
                readings.append(t - stamps[capture.reading_seq[seq]])
            elif seq in capture.alert_seq and capture.alert_seq[seq] in stamps:
                alerts.append(t - stamps[capture.alert_seq[seq]])
    return Latencies.of_seconds(readings), Latencies.of_seconds(alerts)


async def broadcast_floor(
    groups: Sequence[tuple[float, str, int]], clients: int, scratch: Path
) -> Latencies:
    from bench.fanout import delivery, drive_floor

    async with floor_server() as floor:
        fleet = ClientFleet(floor.url, clients, scratch / f"floor-{clients}.json", first=False)
        await fleet.start()
        try:
            await asyncio.sleep(1.0)
            stamps, _busy = await drive_floor(
                floor, [(at, [text], [seq]) for at, text, seq in groups]
            )
            await asyncio.sleep(1.0)
            received, errors = await fleet.stop()
        finally:
            fleet.kill()
    return delivery(received, stamps, errors).latencies


@dataclass(frozen=True)
class Config:
    cuffs: int
    clients: int

    @classmethod
    def parse(cls, text: str) -> Config:
        cuffs, clients = text.lower().split("x")
        return cls(int(cuffs), int(clients))

    def __str__(self) -> str:
        return f"{self.cuffs} cuffs / {self.clients} clients"


async def measure_clinic(
    cuffs: int,
    client_counts: Sequence[int],
    rate: float,
    seconds: float,
    link: Latencies,
    scratch: Path,
    profile: Path | None,
) -> list[str]:
    """One daemon with `cuffs` cuffs, measured with each number of clients in turn."""
    lines: list[str] = []
    async with running_daemon(cuffs) as daemon:
        await warm_up(daemon, timeout_s=120 + 3 * cuffs)
        for clients in client_counts:
            config = Config(cuffs, clients)
            fleet = ClientFleet(daemon.url, clients, scratch / f"ours-{clients}.json", first=True)
            await fleet.start()
            try:
                await asyncio.sleep(2.0)  # the nurse resolves what the last run raised
                since_seq = max((seq for _, _, seq in daemon.capture.groups), default=0)
                first_group = len(daemon.capture.groups)
                with profiled(profile if clients == client_counts[-1] else None):
                    await drive_measurements(daemon.cuffs, rate, seconds)
                    await asyncio.sleep(2.0)  # the last events arrive
                received, errors = await fleet.stop()
            finally:
                fleet.kill()
            reading, alert = latencies_by_type(received, daemon, since_seq)
            published = published_latencies(daemon, since_seq)
            groups = daemon.capture.groups[first_group:]
            bare = await broadcast_floor(groups, clients, scratch)
            floor_p99 = link.p99_ms + bare.p99_ms
            alert_ratio = ratio(alert.p99_ms, floor_p99)
            target = f" ({verdict(alert_ratio, 1.5)})" if (cuffs, clients) == (50, 500) else ""
            lines += [
                f"({load()})",
                f"latency {config}: reading  {reading}",
                f"latency {config}: alert    {alert}",
                f"latency {config}: (indication -> reading published, in the daemon: {published})",
                f"latency {config}: floor    link p99 {link.p99_ms:.2f} ms + bare broadcast "
                f"{bare} = p99 {floor_p99:.2f} ms"
                + (f"; {len(errors)} client(s) closed" if errors else ""),
                f"latency {config}: ours p99 / floor p99: reading "
                f"{ratio(reading.p99_ms, floor_p99):.2f}, alert {alert_ratio:.2f}{target}",
            ]
            for line in lines[-6:]:
                print(line, flush=True)
    return lines


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="6x1 and 50x100, 20 s each")
    parser.add_argument("--configs", help="CUFFSxCLIENTS,... (default 6x1,50x100,50x500)")
    parser.add_argument("--seconds", type=float, help="measuring time per config (default 40)")
    parser.add_argument(
        "--rate",
        type=float,
        default=0.5,
        help="measurements started per s (default 0.5: 3x fifty cuffs measuring every 5 min)",
    )
    parser.add_argument("--profile", type=Path, help="pyinstrument report of the last config")
    return parser.parse_args(argv)


async def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    configs = [
        Config.parse(c)
        for c in (args.configs or ("6x1,50x100" if args.quick else "6x1,50x100,50x500")).split(",")
    ]
    seconds = args.seconds or (20.0 if args.quick else 40.0)
    header("alert latency, end to end (issue #9, benchmark 1)", ["bench/latency.py", *argv])
    print(
        f"speed {SPEED:g}, {args.rate:g} measurements/s for {seconds:g} s per config, 1 cuff in "
        f"{SEVERE_EVERY} severe; clients ?types={WANTED} in a second process"
    )
    link = await link_floor(100 if args.quick else 300)
    print(f"latency floor: one-way indication over the virtual link alone: {link}", flush=True)
    scratch = Path(tempfile.mkdtemp(prefix="vitalsd-latency-clients-"))
    by_cuffs: dict[int, list[int]] = {}
    for config in configs:
        by_cuffs.setdefault(config.cuffs, []).append(config.clients)
    try:
        for cuffs, client_counts in by_cuffs.items():
            profile = args.profile if cuffs == configs[-1].cuffs else None
            await measure_clinic(cuffs, client_counts, args.rate, seconds, link, scratch, profile)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(sys.argv[1:])))

"""`vitalsd demo`: the daemon with a simulated six-chair clinic, in one command.

The cuffs are `vitals-sim` cuffs on an in-process virtual radio (a Bumble `LocalLink`),
reached through the Bumble Bleak backend: the same supervisor, link, codec and ingest as
real cuffs. Time runs `--speed` times faster for cuffs, patients and the clinic's
schedule alike (one `SimClock`), so a two-hour session plays in four minutes at 30.
Tokens keep real time: a login lasts its real lifetime.

Each chair has a patient in a session, doses staggered five simulated minutes apart so
the chairs are in different phases; chair 3's patient starts elevated and responds
strongly to the dose, heading for a severe reading. A demo clinician records each dose
when the simulated patient gets it, overriding a dosing hold with a stated reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import tempfile
from dataclasses import dataclass, replace
from datetime import UTC, date
from pathlib import Path
from typing import Final, TextIO

import httpx

from devices.bumble_backend import BumbleHost
from simulators.clock import SimClock
from simulators.cuff import CuffConfig, SimulatedCuff
from simulators.physiology import Profile
from simulators.radio import VirtualRadio
from simulators.scenarios import CuffFleet, scenario_configs
from vitalsd.auth import PasswordHasher, generate_password
from vitalsd.clinic import Actor, Clinic
from vitalsd.daemon import Daemon
from vitalsd.domain import Drug, Role, Route
from vitalsd.errors import Conflict, DosingHoldActive, NotFound
from vitalsd.settings import load_settings

log = logging.getLogger(__name__)

DEMO_PASSWORD_ENV: Final = "VITALSD_DEMO_PASSWORD"
DEMO_SCENARIO: Final = "clinic"
DEMO_SEED: Final = 2026
# The demo central's own random static address (the cuffs use D0:5E:...).
CENTRAL_ADDRESS: Final = "C0:DE:00:00:00:01"
# Which chair is heading for a severe reading (0-based), and how.
SEVERE_CHAIR: Final = 2
OVERRIDE_REASON: Final = "demo: baseline reviewed by the clinician, dose given"


@dataclass(frozen=True)
class DemoPatient:
    identifier: str
    display_name: str
    date_of_birth: date
    amount_mg: float
    protocol: str = "ketamine-psychotherapy"
    drug: Drug = Drug.KETAMINE
    route: Route = Route.IM


# One per chair, in chair order; chair 4's patient is on esketamine (REMS protocol).
PATIENTS: Final = (
    DemoPatient("DEMO-001", "Avery Brooks", date(1984, 3, 14), 35.0),
    DemoPatient("DEMO-002", "Blake Chen", date(1959, 9, 2), 40.0),
    DemoPatient("DEMO-003", "Casey Diaz", date(1971, 1, 23), 50.0),
    DemoPatient(
        "DEMO-004",
        "Devon Ellis",
        date(1990, 6, 30),
        56.0,
        protocol="esketamine-rems",
        drug=Drug.ESKETAMINE,
        route=Route.INTRANASAL,
    ),
    DemoPatient("DEMO-005", "Emery Fox", date(1978, 11, 8), 35.0),
    DemoPatient("DEMO-006", "Finley Grant", date(1966, 4, 19), 45.0),
)


def demo_cuffs() -> list[CuffConfig]:
    """The `clinic` scenario's six cuffs, with chair 3's patient elevated at rest and a
    high responder: a baseline above 140/90, then well past 180/110 after the dose."""
    configs = scenario_configs(DEMO_SCENARIO, seed=DEMO_SEED)
    configs[SEVERE_CHAIR] = replace(
        configs[SEVERE_CHAIR], profile=Profile.ELEVATED, high_responder=True
    )
    return configs


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: Role
    password: str | None  # None: the account existed already, its password unchanged


async def ensure_users(
    clinic: Clinic, passwords: PasswordHasher, secret: str | None
) -> list[DemoUser]:
    """`nurse`, `clinician` and `admin`, with the password from VITALSD_DEMO_PASSWORD or a
    random one each (printed; never a fixed default)."""
    users = []
    for role in (Role.NURSE, Role.CLINICIAN, Role.ADMIN):
        try:
            await clinic.get_user(role.value)
            users.append(DemoUser(role.value, role, None))
            continue
        except NotFound:
            pass
        password = secret or generate_password()
        password_hash = await asyncio.to_thread(passwords.hash, password)
        await clinic.create_user(role.value, password_hash, role)
        users.append(DemoUser(role.value, role, password))
    return users


async def seat_patients(clinic: Clinic, cuffs: list[SimulatedCuff]) -> list[int]:
    """A chair per cuff, a patient per chair, a session per patient (what the front desk
    and the nurses would do); returns the session ids. A reused data directory keeps its
    chairs, patients and any open session."""
    admin = Actor("demo-admin", Role.ADMIN)
    clinician = Actor("clinician", Role.CLINICIAN)
    chairs = {c.name: c for c in await clinic.list_chairs()}
    patients = {p.identifier: p for p in await clinic.list_patients()}
    open_sessions = {s.chair_id: s.id for s in await clinic.list_sessions(open_only=True)}
    sessions = []
    for number, (cuff, who) in enumerate(zip(cuffs, PATIENTS, strict=True), start=1):
        name = f"Chair {number}"
        chair = chairs.get(name) or await clinic.create_chair(name, by=admin)
        if chair.cuff_address != cuff.address.upper():
            chair = await clinic.assign_cuff(chair.id, cuff.address, by=admin)
        patient = patients.get(who.identifier) or await clinic.create_patient(
            who.identifier, who.display_name, who.date_of_birth, by=admin
        )
        if chair.id in open_sessions:
            sessions.append(open_sessions[chair.id])
            continue
        session = await clinic.start_session(
            patient.id, chair.id, by=clinician, protocol=who.protocol
        )
        sessions.append(session.id)
    return sessions


async def give_doses(
    clinic: Clinic, clock: SimClock, cuffs: list[SimulatedCuff], sessions: list[int]
) -> None:
    """The demo clinician: record each dose when the simulated patient receives it."""
    clinician = Actor("clinician", Role.CLINICIAN)
    pending = sorted((cuff.doses[0], index) for index, cuff in enumerate(cuffs) if cuff.doses)
    for when, index in pending:
        await clock.sleep_until(when)
        who, session_id = PATIENTS[index], sessions[index]
        dose = {"drug": who.drug, "amount_mg": who.amount_mg, "route": who.route, "given_at": when}
        try:
            try:
                await clinic.record_dose(session_id, by=clinician, **dose)  # type: ignore[arg-type]
            except DosingHoldActive:
                await clinic.record_dose(
                    session_id,
                    by=clinician,
                    override_reason=OVERRIDE_REASON,
                    **dose,  # type: ignore[arg-type]
                )
            log.info("demo: %s dosed in session %d", who.display_name, session_id)
        except Conflict as error:
            log.warning("demo: no dose for session %d: %s", session_id, error.reason)


def banner(
    url: str, data_dir: Path, users: list[DemoUser], speed: float, channels: str = ""
) -> str:
    lines = [
        "",
        "vitalsd demo: a simulated clinic of six chairs",
        f"  dashboard:  {url}",
        f"  API docs:   {url}docs",
        f"  data:       {data_dir}",
        f"  speed:      {speed:g}x (cuffs, patients and the check schedule)",
        *([f"  alerts to:  {channels}"] if channels else []),
        "  users:",
    ]
    for user in users:
        shown = user.password if user.password is not None else "(unchanged: existing account)"
        lines.append(f"    {user.username:<10} {user.role.value:<10} password: {shown}")
    lines += ["  Ctrl-C stops it.", ""]
    return "\n".join(lines)


# How long the banner waits for the dashboard to answer before it is printed anyway, and
# how often it asks (a guard against a hang; the server is normally up in milliseconds).
HEALTH_PATIENCE_S: Final = 30.0
HEALTH_POLL_S: Final = 0.1


async def announce_when_answering(url: str, text: str, stream: TextIO) -> None:
    """Print the banner once `GET /healthz` answers, so it comes after the start-up log
    lines instead of among them (issue #14: the newcomer's terminal)."""
    async with httpx.AsyncClient(timeout=HEALTH_POLL_S * 10) as client:
        for _ in range(int(HEALTH_PATIENCE_S / HEALTH_POLL_S)):
            try:
                await client.get(f"{url}healthz")  # 503 (degraded) is an answer too
                break
            except httpx.HTTPError:
                await asyncio.sleep(HEALTH_POLL_S)
        else:
            log.warning("demo: %shealthz did not answer; the dashboard may not be up", url)
    print(text, file=stream, flush=True)


async def run_demo(
    *,
    host: str,
    port: int,
    data_dir: Path | None,
    speed: float,
    out: TextIO | None = None,
    config: Path | None = None,
) -> None:
    """`config`: a settings file (e.g. its `[notify]` channels); the demo's own data
    directory, address and embedded SQLite database win over it."""
    stream = out or sys.stdout
    directory = data_dir or Path(tempfile.mkdtemp(prefix="vitalsd-demo-"))
    directory.mkdir(parents=True, exist_ok=True)
    settings = load_settings(
        config,
        data_dir=directory,
        host=host,
        port=port,
        database_url=None,
        # A real minute without a dashboard at any speed, not 2 s at 30x (issue #15).
        nobody_watching_after_seconds=max(60, round(60 * speed)),
    )
    clock = SimClock(speed)
    clinic = await Clinic.open(settings, clock=clock.now)
    passwords = PasswordHasher()
    radio = VirtualRadio()
    cuffs = [SimulatedCuff(config, clock=clock, link=radio.link) for config in demo_cuffs()]
    fleet = CuffFleet(DEMO_SCENARIO, [], clock, radio, owns_radio=True)
    central: BumbleHost | None = None
    dosing: asyncio.Task[None] | None = None
    announcing: asyncio.Task[None] | None = None
    try:
        users = await ensure_users(clinic, passwords, os.environ.get(DEMO_PASSWORD_ENV) or None)
        for cuff in cuffs:
            await cuff.start()
            fleet.cuffs.append(cuff)
        sessions = await seat_patients(clinic, cuffs)
        central = await BumbleHost.on_link(radio.link, address=CENTRAL_ADDRESS)
        daemon = Daemon(
            settings, clinic, ble=central, clock=clock.now, zone=UTC, passwords=passwords
        )
        dosing = asyncio.create_task(give_doses(clinic, clock, cuffs, sessions), name="demo doses")

        def ready(url: str) -> None:
            nonlocal announcing
            channels = ", ".join(f"{c.name} ({c.kind})" for c in settings.notify.channels)
            text = banner(url, directory, users, speed, channels)
            announcing = asyncio.create_task(
                announce_when_answering(url, text, stream), name="demo banner"
            )

        await daemon.run(on_ready=ready)
    finally:
        if announcing is not None:
            announcing.cancel()
        if dosing is not None:
            dosing.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await dosing
        if central is not None:
            with contextlib.suppress(Exception):
                await central.close()
        await fleet.stop()
        await clinic.close()

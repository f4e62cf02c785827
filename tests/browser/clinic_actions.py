"""What the tests do to the simulated clinic: a cuff's patient turns hypertensive, a cuff
measures now, a chair gets a new patient whose session began earlier. Cuff readings go
the real path: the simulated cuff's GATT server, the virtual radio, the daemon's Bleak
link, ingest, rules, events, `/ws`; staff actions go through the clinic service."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Final

from simulators.cuff import MeasurementRecord
from tests.browser.clinic_server import ClinicServer
from vitalsd.clinic import Actor
from vitalsd.domain import Drug, Role, Route
from vitalsd.views import AlertView

NURSE: Final = Actor("nurse", Role.NURSE)
CLINICIAN: Final = Actor("clinician", Role.CLINICIAN)

# Well past the 180/110 severe threshold (DESIGN.md "Thresholds"), whatever the dose adds.
SEVERE: Final = (205.0, 124.0)


def chair_id(server: ClinicServer, number: int) -> int:
    """The id of "Chair <number>" (the demo names chairs 1-6)."""
    for chair in server.call(server.clinic.list_chairs()):
        if chair.name == f"Chair {number}":
            return chair.id
    raise LookupError(f"no chair named Chair {number}")


def measure(server: ClinicServer, number: int) -> MeasurementRecord:
    """Chair <number>'s cuff measures now; returns once the cuff has delivered it."""
    cuff = server.cuffs[number - 1]
    return server.call(cuff.measure())


def make_hypertensive(server: ClinicServer, number: int) -> None:
    """Chair <number>'s patient's resting pressure jumps to a severe level."""
    cuff = server.cuffs[number - 1]
    systolic, diastolic = SEVERE

    def change() -> None:
        cuff.patient = replace(
            cuff.patient, baseline_systolic=systolic, baseline_diastolic=diastolic
        )

    server.running.loop.call_soon_threadsafe(change)


def open_alerts(server: ClinicServer, kind: str, number: int) -> list[AlertView]:
    """The unresolved alerts of `kind` on chair <number>'s session."""
    session_id = server.sessions[number - 1]
    found = server.call(server.clinic.list_alerts(session_id=session_id, open_only=True))
    return [a for a in found if a.kind == kind]


def wait_for_open_alert(
    server: ClinicServer, kind: str, number: int, *, timeout_s: float = 10.0
) -> AlertView:
    """The open alert of `kind` on chair <number>, once the clinic has stored it (a cuff's
    delivery is confirmed before the daemon's ingest commits)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = open_alerts(server, kind, number)
        if found:
            return found[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"no open {kind} alert on chair {number} after {timeout_s} s")
        time.sleep(0.05)


def severe_alert(server: ClinicServer, number: int) -> AlertView:
    """An active severe_hypertension alert on chair <number>, from a real cuff reading."""
    make_hypertensive(server, number)
    found = [a for a in open_alerts(server, "severe_hypertension", number) if a.state == "active"]
    if found:
        return found[0]
    measure(server, number)
    return wait_for_open_alert(server, "severe_hypertension", number)


@dataclass(frozen=True)
class Reseated:
    chair_id: int
    session_id: int


async def _reseat(
    server: ClinicServer,
    number: int,
    identifier: str,
    *,
    began_minutes_ago: float,
    baseline: tuple[float, float],
    dosed_minutes_ago: float | None,
) -> Reseated:
    clinic = server.clinic
    cuff = server.cuffs[number - 1]
    if cuff.in_range:
        await cuff.go_out_of_range()  # its readings would satisfy the new session's checks
    chair = next(c for c in await clinic.list_chairs() if c.name == f"Chair {number}")
    if chair.session_id is not None:
        await clinic.close_session(chair.session_id, by=CLINICIAN, reason="test: chair reseated")
    patient = await clinic.create_patient(
        identifier, f"Test Patient {identifier}", date(1980, 5, 17), by=CLINICIAN
    )
    now = server.running.clock.now()
    session = await clinic.start_session(
        patient.id, chair.id, by=CLINICIAN, started_at=now - timedelta(minutes=began_minutes_ago)
    )
    systolic, diastolic = baseline
    await clinic.record_manual_reading(
        session.id,
        systolic=systolic,
        diastolic=diastolic,
        pulse_rate=72.0,
        by=NURSE,
        measured_at=now - timedelta(minutes=began_minutes_ago - 1),
    )
    if dosed_minutes_ago is not None:
        await clinic.record_dose(
            session.id,
            drug=Drug.KETAMINE,
            amount_mg=35.0,
            route=Route.IM,
            by=CLINICIAN,
            given_at=now - timedelta(minutes=dosed_minutes_ago),
        )
    return Reseated(chair.id, session.id)


def reseat(
    server: ClinicServer,
    number: int,
    identifier: str,
    *,
    began_minutes_ago: float,
    baseline: tuple[float, float],
    dosed_minutes_ago: float | None = None,
) -> Reseated:
    """Chair <number> gets a new patient (first session of their course) whose session
    began `began_minutes_ago` simulated minutes ago, with a manual baseline a minute
    later and, if given, a dose `dosed_minutes_ago`; the chair's cuff goes out of range,
    so nothing but the test records readings there."""
    return server.call(
        _reseat(
            server,
            number,
            identifier,
            began_minutes_ago=began_minutes_ago,
            baseline=baseline,
            dosed_minutes_ago=dosed_minutes_ago,
        )
    )

"""Builders for the pure-core tests: times are minutes after a fixed session start."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import count

from vitalsd.domain import (
    Dose,
    DoseFlag,
    Drug,
    Reading,
    ReadingFlag,
    ReadingSource,
    Route,
    SessionFacts,
)

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
_ids = count(1)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def minutes_of(moment: datetime | None) -> float | None:
    return None if moment is None else (moment - T0) / timedelta(minutes=1)


def reading(
    minutes: float,
    systolic: float = 122,
    diastolic: float = 78,
    pulse: float | None = 72,
    flags: frozenset[ReadingFlag] = frozenset(),
    source: ReadingSource = ReadingSource.CUFF,
    received: float | None = None,
) -> Reading:
    return Reading(
        id=next(_ids),
        measured_at=at(minutes),
        systolic=systolic,
        diastolic=diastolic,
        pulse_rate=pulse,
        source=source,
        flags=flags,
        received_at=None if received is None else at(received),
    )


def error_frame(minutes: float) -> Reading:
    return Reading(
        id=next(_ids), measured_at=at(minutes), systolic=None, diastolic=None, valid=False
    )


def dose(
    minutes: float,
    amount_mg: float = 50,
    increase: bool = False,
    stopped: float | None = None,
    drug: Drug = Drug.KETAMINE,
    route: Route = Route.IM,
    flags: frozenset[DoseFlag] = frozenset(),
) -> Dose:
    return Dose(
        id=next(_ids),
        drug=drug,
        amount_mg=amount_mg,
        route=route,
        given_at=at(minutes),
        ended_at=None if stopped is None else at(stopped),
        increase=increase,
        flags=flags,
    )


def facts(
    *readings_and_doses: Reading | Dose,
    course_session: int = 5,
    born: date = date(1980, 6, 1),
    waivers: tuple[tuple[str, str], ...] = (),
    closed: float | None = None,
) -> SessionFacts:
    return SessionFacts(
        started_at=T0,
        course_session=course_session,
        doses=tuple(x for x in readings_and_doses if isinstance(x, Dose)),
        readings=tuple(x for x in readings_and_doses if isinstance(x, Reading)),
        waivers=waivers,
        closed_at=None if closed is None else at(closed),
        date_of_birth=born,
    )

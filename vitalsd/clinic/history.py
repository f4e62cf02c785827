"""History: a patient's past sessions at a glance (issue #14, the patient page): date,
protocol, doses, peak blood pressure, alerts and side effects per session, newest first,
read in a fixed number of queries however long the course."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vitalsd import views
from vitalsd.store import models

from .lookups import get, rows_by_session
from .rows import patient_view

# A course is weekly or twice weekly: a few hundred sessions is years of treatment.
MAX_HISTORY_SESSIONS = 500


@dataclass(frozen=True)
class HistoryDose(views.View):
    drug: str
    amount_mg: float
    route: str
    given_at: datetime
    increase: bool


@dataclass(frozen=True)
class HistoryPeak(views.View):
    """The session's highest valid reading (by systolic, then diastolic)."""

    reading_id: int
    systolic: float
    diastolic: float
    measured_at: datetime
    category: str | None


@dataclass(frozen=True)
class HistoryAlert(views.View):
    id: int
    kind: str
    priority: str
    raised_at: datetime


@dataclass(frozen=True)
class HistorySideEffect(views.View):
    effect: str
    severity: int
    observed_at: datetime


@dataclass(frozen=True)
class SessionSummary(views.View):
    id: int
    chair_id: int
    protocol: str
    course_session: int
    phase: str
    started_at: datetime
    started_by: str
    closed_at: datetime | None
    closed_by: str | None
    doses: tuple[HistoryDose, ...]
    total_mg: float
    readings: int
    peak: HistoryPeak | None
    alerts: tuple[HistoryAlert, ...]
    side_effects: tuple[HistorySideEffect, ...]


@dataclass(frozen=True)
class PatientHistory(views.View):
    patient: views.PatientView
    sessions: tuple[SessionSummary, ...]


def _peak(readings: list[models.Reading]) -> HistoryPeak | None:
    valid = [r for r in readings if r.valid and r.systolic is not None and r.diastolic is not None]
    if not valid:
        return None
    top = max(valid, key=lambda r: (r.systolic, r.diastolic, -r.id))
    assert top.systolic is not None and top.diastolic is not None
    return HistoryPeak(top.id, top.systolic, top.diastolic, top.measured_at, top.category)


class History:
    """Reads on the readers' pool; no writes."""

    def __init__(self, reads: async_sessionmaker[AsyncSession]) -> None:
        self._reads = reads

    async def patient_history(self, patient_id: int) -> PatientHistory:
        """The patient and their sessions, newest first (NotFound for no such patient)."""
        async with self._reads() as db:
            patient = patient_view(await get(db, models.Patient, patient_id, "patient"))
            sessions = list(
                await db.scalars(
                    select(models.Session)
                    .where(models.Session.patient_id == patient_id)
                    .order_by(models.Session.started_at.desc(), models.Session.id.desc())
                    .limit(MAX_HISTORY_SESSIONS)
                )
            )
            ids = [s.id for s in sessions]
            doses = await rows_by_session(
                db, models.Dose, ids, models.Dose.given_at, models.Dose.id
            )
            readings = await rows_by_session(db, models.Reading, ids, models.Reading.id)
            alerts = await rows_by_session(
                db, models.Alert, ids, models.Alert.raised_at, models.Alert.id
            )
            effects = await rows_by_session(
                db, models.SideEffect, ids, models.SideEffect.observed_at, models.SideEffect.id
            )
            return PatientHistory(
                patient,
                tuple(
                    SessionSummary(
                        id=s.id,
                        chair_id=s.chair_id,
                        protocol=s.protocol,
                        course_session=s.course_session,
                        phase=s.phase,
                        started_at=s.started_at,
                        started_by=s.started_by,
                        closed_at=s.closed_at,
                        closed_by=s.closed_by,
                        doses=tuple(
                            HistoryDose(d.drug, d.amount_mg, d.route, d.given_at, d.increase)
                            for d in doses[s.id]
                        ),
                        total_mg=sum(d.amount_mg for d in doses[s.id]),
                        readings=sum(1 for r in readings[s.id] if r.valid),
                        peak=_peak(readings[s.id]),
                        alerts=tuple(
                            HistoryAlert(a.id, a.kind, a.priority, a.raised_at)
                            for a in alerts[s.id]
                        ),
                        side_effects=tuple(
                            HistorySideEffect(e.effect, e.severity, e.observed_at)
                            for e in effects[s.id]
                        ),
                    )
                    for s in sessions
                ),
            )

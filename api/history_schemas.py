"""Response models of the admission and history routes (issue #14): a patient's past
sessions at a glance (the protocols are listed by `api.routes.protocols`)."""

from __future__ import annotations

from pydantic import Field

from api.schemas import Out, PatientOut, TimeOut


class HistoryDoseOut(Out):
    drug: str
    amount_mg: float
    route: str
    given_at: TimeOut
    increase: bool


class HistoryPeakOut(Out):
    reading_id: int
    systolic: float = Field(description="mmHg")
    diastolic: float = Field(description="mmHg")
    measured_at: TimeOut
    category: str | None


class HistoryAlertOut(Out):
    id: int
    kind: str
    priority: str
    raised_at: TimeOut


class HistorySideEffectOut(Out):
    effect: str
    severity: int
    observed_at: TimeOut


class SessionSummaryOut(Out):
    id: int
    chair_id: int
    protocol: str
    course_session: int
    phase: str
    started_at: TimeOut
    started_by: str
    closed_at: TimeOut | None
    closed_by: str | None
    doses: list[HistoryDoseOut]
    total_mg: float
    readings: int = Field(description="Valid readings")
    peak: HistoryPeakOut | None = Field(description="The highest valid reading")
    alerts: list[HistoryAlertOut]
    side_effects: list[HistorySideEffectOut]


class PatientHistoryOut(Out):
    patient: PatientOut
    sessions: list[SessionSummaryOut] = Field(description="Newest first")

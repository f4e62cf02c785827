"""Readings, checks, alerts and the audit log, across sessions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AlertResolver, AlertResponder, Auditor, ClinicDep, Reader, SessionRunner
from api.errors import AUTH_ERRORS, CONFLICT, NOT_FOUND
from api.params import MAX_ID, IdPath, ReadingWindow
from api.readings_query import readings_page
from api.schemas import (
    AlertOut,
    AuditOut,
    CheckOut,
    ReadingOut,
    ReadingPage,
    ResolveIn,
    SnoozeIn,
    WaiveIn,
)
from vitalsd.domain import AlertKind, AlertState

readings = APIRouter(prefix="/api/readings", tags=["readings"], responses=AUTH_ERRORS)
checks = APIRouter(prefix="/api/checks", tags=["checks"], responses=AUTH_ERRORS)
alerts = APIRouter(prefix="/api/alerts", tags=["alerts"], responses=AUTH_ERRORS)
audit = APIRouter(prefix="/api/audit", tags=["audit"], responses=AUTH_ERRORS)

OptionalId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


@readings.get("", response_model=ReadingPage, responses=NOT_FOUND)
async def list_readings(
    window: ReadingWindow,
    clinic: ClinicDep,
    user: Reader,
    session_id: OptionalId = None,
    patient_id: OptionalId = None,
) -> ReadingPage:
    """Readings by session, patient or the whole clinic, in a time range, oldest first."""
    if patient_id is not None:
        await clinic.get_patient(patient_id)
    return await readings_page(clinic, window, session_id=session_id, patient_id=patient_id)


@readings.get("/{reading_id}", response_model=ReadingOut, responses=NOT_FOUND)
async def get_reading(reading_id: IdPath, clinic: ClinicDep, user: Reader) -> ReadingOut:
    return ReadingOut.model_validate(await clinic.get_reading(reading_id))


@checks.post("/{check_id}/waive", response_model=CheckOut, responses=NOT_FOUND | CONFLICT)
async def waive_check(
    check_id: IdPath, body: WaiveIn, clinic: ClinicDep, user: SessionRunner
) -> CheckOut:
    """Waive a check with a reason (kept in the audit trail)."""
    return CheckOut.model_validate(await clinic.waive_check(check_id, body.reason, by=user))


@alerts.get("", response_model=list[AlertOut])
async def list_alerts(
    clinic: ClinicDep,
    user: Reader,
    session_id: OptionalId = None,
    state: Annotated[list[AlertState] | None, Query(description="Repeat for several")] = None,
    kind: AlertKind | None = None,
    open: Annotated[bool, Query(description="Only alerts not yet resolved")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> list[AlertOut]:
    """Active alerts (`open=true`) or the history; newest first."""
    found = await clinic.list_alerts(
        session_id=session_id, state=state, kind=kind, open_only=open, limit=limit
    )
    return [AlertOut.model_validate(a) for a in found]


@alerts.get("/{alert_id}", response_model=AlertOut, responses=NOT_FOUND)
async def get_alert(alert_id: IdPath, clinic: ClinicDep, user: Reader) -> AlertOut:
    return AlertOut.model_validate(await clinic.get_alert(alert_id))


@alerts.post("/{alert_id}/acknowledge", response_model=AlertOut, responses=NOT_FOUND | CONFLICT)
async def acknowledge_alert(alert_id: IdPath, clinic: ClinicDep, user: AlertResponder) -> AlertOut:
    """Acknowledge (a dosing hold: a clinician only)."""
    return AlertOut.model_validate(await clinic.acknowledge_alert(alert_id, by=user))


@alerts.post("/{alert_id}/snooze", response_model=AlertOut, responses=NOT_FOUND | CONFLICT)
async def snooze_alert(
    alert_id: IdPath, body: SnoozeIn, clinic: ClinicDep, user: AlertResponder
) -> AlertOut:
    """Silence for a while: always time-limited, never off indefinitely."""
    return AlertOut.model_validate(await clinic.snooze_alert(alert_id, body.minutes, by=user))


@alerts.post("/{alert_id}/resolve", response_model=AlertOut, responses=NOT_FOUND | CONFLICT)
async def resolve_alert(
    alert_id: IdPath, body: ResolveIn, clinic: ClinicDep, user: AlertResolver
) -> AlertOut:
    return AlertOut.model_validate(await clinic.resolve_alert(alert_id, body.note, by=user))


@audit.get("", response_model=list[AuditOut])
async def list_audit(
    clinic: ClinicDep,
    user: Auditor,
    entity: Annotated[str | None, Query(max_length=32)] = None,
    entity_id: OptionalId = None,
    session_id: OptionalId = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    after_id: Annotated[
        int | None,
        Query(
            ge=0,
            le=2**31 - 1,
            description="Only entries after this id: pass the last id of a page for the next",
        ),
    ] = None,
) -> list[AuditOut]:
    """Who did what, when, oldest first (admins); page through with `after_id`."""
    found = await clinic.list_audit(
        entity=entity, entity_id=entity_id, session_id=session_id, limit=limit, after_id=after_id
    )
    return [AuditOut.model_validate(a) for a in found]

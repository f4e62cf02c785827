"""Dosing sessions: start, doses, side effects, manual readings, checks, close."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ClinicDep, Observer, Reader, SessionRunner
from api.errors import AUTH_ERRORS, CONFLICT, NOT_FOUND
from api.params import IdPath
from api.schemas import (
    CheckOut,
    CloseIn,
    DoseIn,
    DoseOut,
    InfusionStopIn,
    ManualReadingIn,
    ReadingOut,
    SessionIn,
    SessionOut,
    SideEffectIn,
    SideEffectOut,
    WaiveIn,
)
from vitalsd.errors import NotFound

router = APIRouter(prefix="/api/sessions", tags=["sessions"], responses=AUTH_ERRORS)

# A session's whole chart fits: even an infusion protocol makes a few dozen readings.
MAX_SESSION_READINGS = 10_000


@router.post("", response_model=SessionOut, status_code=201, responses=NOT_FOUND | CONFLICT)
async def start_session(body: SessionIn, clinic: ClinicDep, user: SessionRunner) -> SessionOut:
    """Check a patient in on a chair under a protocol."""
    started = await clinic.start_session(
        body.patient_id,
        body.chair_id,
        by=user,
        protocol=body.protocol,
        started_at=body.started_at,
        course_session=body.course_session,
    )
    return SessionOut.model_validate(started)


@router.get("", response_model=list[SessionOut])
async def list_sessions(
    clinic: ClinicDep,
    user: Reader,
    open: Annotated[bool, Query(description="Only sessions not yet closed")] = False,
    patient_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    chair_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[SessionOut]:
    """Newest first."""
    found = await clinic.list_sessions(
        open_only=open, patient_id=patient_id, chair_id=chair_id, limit=limit
    )
    return [SessionOut.model_validate(s) for s in found]


@router.get("/{session_id}", response_model=SessionOut, responses=NOT_FOUND)
async def get_session(session_id: IdPath, clinic: ClinicDep, user: Reader) -> SessionOut:
    return SessionOut.model_validate(await clinic.get_session(session_id))


@router.post(
    "/{session_id}/doses",
    response_model=DoseOut,
    status_code=201,
    responses=NOT_FOUND | CONFLICT,
)
async def record_dose(
    session_id: IdPath, body: DoseIn, clinic: ClinicDep, user: SessionRunner
) -> DoseOut:
    """Record a dose (or a dose increase). 409 while a dosing hold stands, unless
    `override_reason` is given."""
    dose = await clinic.record_dose(
        session_id,
        drug=body.drug,
        amount_mg=body.amount_mg,
        route=body.route,
        by=user,
        given_at=body.given_at,
        ended_at=body.ended_at,
        increase=body.increase,
        override_reason=body.override_reason,
    )
    return DoseOut.model_validate(dose)


@router.get("/{session_id}/doses", response_model=list[DoseOut], responses=NOT_FOUND)
async def list_doses(session_id: IdPath, clinic: ClinicDep, user: Reader) -> list[DoseOut]:
    return [DoseOut.model_validate(d) for d in await clinic.list_doses(session_id)]


@router.post(
    "/{session_id}/doses/{dose_id}/stop",
    response_model=DoseOut,
    responses=NOT_FOUND | CONFLICT,
)
async def stop_infusion(
    session_id: IdPath,
    dose_id: IdPath,
    clinic: ClinicDep,
    user: SessionRunner,
    body: InfusionStopIn | None = None,
) -> DoseOut:
    """End a running infusion (the post-infusion checks count from here)."""
    at = body.at if body is not None else None
    return DoseOut.model_validate(await clinic.stop_infusion(session_id, dose_id, by=user, at=at))


@router.post(
    "/{session_id}/side-effects",
    response_model=SideEffectOut,
    status_code=201,
    responses=NOT_FOUND,
)
async def record_side_effect(
    session_id: IdPath, body: SideEffectIn, clinic: ClinicDep, user: Observer
) -> SideEffectOut:
    effect = await clinic.record_side_effect(
        session_id,
        effect=body.effect,
        severity=body.severity_level,
        by=user,
        observed_at=body.observed_at,
        note=body.note,
    )
    return SideEffectOut.model_validate(effect)


@router.get("/{session_id}/side-effects", response_model=list[SideEffectOut], responses=NOT_FOUND)
async def list_side_effects(
    session_id: IdPath, clinic: ClinicDep, user: Reader
) -> list[SideEffectOut]:
    await clinic.get_session(session_id)
    return [SideEffectOut.model_validate(e) for e in await clinic.list_side_effects(session_id)]


@router.post(
    "/{session_id}/readings",
    response_model=ReadingOut,
    status_code=201,
    responses=NOT_FOUND | CONFLICT,
)
async def record_manual_reading(
    session_id: IdPath, body: ManualReadingIn, clinic: ClinicDep, user: Observer
) -> ReadingOut:
    """A reading taken by hand (a cuff failed); `measured_at` may be past, not future."""
    reading = await clinic.record_manual_reading(
        session_id,
        systolic=body.systolic,
        diastolic=body.diastolic,
        by=user,
        pulse_rate=body.pulse_rate,
        measured_at=body.measured_at,
    )
    return ReadingOut.model_validate(reading)


@router.get("/{session_id}/readings", response_model=list[ReadingOut], responses=NOT_FOUND)
async def list_session_readings(
    session_id: IdPath, clinic: ClinicDep, user: Reader
) -> list[ReadingOut]:
    """The session's whole chart, oldest first (failed measurements included)."""
    found = await clinic.list_readings(session_id=session_id, limit=MAX_SESSION_READINGS)
    return [ReadingOut.model_validate(r) for r in found]


@router.get("/{session_id}/checks", response_model=list[CheckOut], responses=NOT_FOUND)
async def list_checks(session_id: IdPath, clinic: ClinicDep, user: Reader) -> list[CheckOut]:
    return [CheckOut.model_validate(c) for c in await clinic.list_checks(session_id)]


@router.post(
    "/{session_id}/checks/{check_id}/waive",
    response_model=CheckOut,
    responses=NOT_FOUND | CONFLICT,
)
async def waive_session_check(
    session_id: IdPath, check_id: IdPath, body: WaiveIn, clinic: ClinicDep, user: SessionRunner
) -> CheckOut:
    """Waive a check with a reason (kept in the audit trail)."""
    if not any(c.id == check_id for c in await clinic.list_checks(session_id)):
        raise NotFound(f"no check {check_id} in session {session_id}")
    return CheckOut.model_validate(await clinic.waive_check(check_id, body.reason, by=user))


@router.post("/{session_id}/close", response_model=SessionOut, responses=NOT_FOUND | CONFLICT)
async def close_session(
    session_id: IdPath, clinic: ClinicDep, user: SessionRunner, body: CloseIn | None = None
) -> SessionOut:
    """Close the session. 409 without the close-of-session reading, unless a reason is
    given."""
    reason = body.reason if body is not None else None
    return SessionOut.model_validate(await clinic.close_session(session_id, by=user, reason=reason))

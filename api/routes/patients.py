"""Patients: register, list, look up, and a patient's readings across sessions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ClinicDep, PatientManager, Reader
from api.errors import AUTH_ERRORS, CONFLICT, NOT_FOUND
from api.history_schemas import PatientHistoryOut
from api.params import IdPath, ReadingWindow
from api.readings_query import readings_page
from api.schemas import PatientIn, PatientOut, ReadingPage, SessionOut

router = APIRouter(prefix="/api/patients", tags=["patients"], responses=AUTH_ERRORS)


@router.post("", response_model=PatientOut, status_code=201, responses=CONFLICT)
async def create_patient(body: PatientIn, clinic: ClinicDep, user: PatientManager) -> PatientOut:
    created = await clinic.create_patient(
        body.identifier, body.display_name, body.date_of_birth, by=user
    )
    return PatientOut.model_validate(created)


@router.get("", response_model=list[PatientOut])
async def list_patients(
    clinic: ClinicDep,
    user: Reader,
    q: Annotated[
        str | None,
        Query(
            max_length=128,
            description="Only patients whose identifier or name holds this (any case)",
        ),
    ] = None,
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
) -> list[PatientOut]:
    """By id; `q` finds a patient at admission by record number or name."""
    found = await clinic.list_patients(search=q, limit=limit)
    return [PatientOut.model_validate(p) for p in found]


@router.get("/{patient_id}", response_model=PatientOut, responses=NOT_FOUND)
async def get_patient(patient_id: IdPath, clinic: ClinicDep, user: Reader) -> PatientOut:
    return PatientOut.model_validate(await clinic.get_patient(patient_id))


@router.get("/{patient_id}/sessions", response_model=list[SessionOut], responses=NOT_FOUND)
async def list_patient_sessions(
    patient_id: IdPath, clinic: ClinicDep, user: Reader
) -> list[SessionOut]:
    await clinic.get_patient(patient_id)
    return [SessionOut.model_validate(s) for s in await clinic.list_sessions(patient_id=patient_id)]


@router.get("/{patient_id}/readings", response_model=ReadingPage, responses=NOT_FOUND)
async def list_patient_readings(
    patient_id: IdPath, window: ReadingWindow, clinic: ClinicDep, user: Reader
) -> ReadingPage:
    """Every reading of the patient, across sessions, oldest first, one page at a time."""
    await clinic.get_patient(patient_id)
    return await readings_page(clinic, window, patient_id=patient_id)


@router.get("/{patient_id}/history", response_model=PatientHistoryOut, responses=NOT_FOUND)
async def patient_history(patient_id: IdPath, clinic: ClinicDep, user: Reader) -> PatientHistoryOut:
    """The patient's sessions, newest first: date, protocol, doses, peak blood pressure,
    alerts and side effects of each (the patient page)."""
    return PatientHistoryOut.model_validate(await clinic.patient_history(patient_id))

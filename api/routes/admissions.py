"""Admission (issue #14): a patient onto an empty chair, its cuff bound, the session
started, from one form on the tablet."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field

from api.deps import ClinicDep, SessionRunner
from api.errors import AUTH_ERRORS, CONFLICT, NOT_FOUND
from api.schemas import CuffAddress, Id, MoveConfirmation, ProtocolName, SessionOut

router = APIRouter(prefix="/api/admissions", tags=["sessions"], responses=AUTH_ERRORS)


class AdmissionIn(MoveConfirmation):
    """`confirm` and `reason` are needed when the cuff is on another chair whose
    session is open (DESIGN.md "Cuffs and chairs"); else 409 and nothing changes."""

    patient_id: Id
    chair_id: Id
    protocol: ProtocolName | None = Field(
        default=None, description="A loaded protocol's name; the clinic's default if omitted"
    )
    cuff_address: CuffAddress | None = Field(
        default=None, description="The cuff to measure the session; the chair's own if omitted"
    )


@router.post("", response_model=SessionOut, status_code=201, responses=NOT_FOUND | CONFLICT)
async def admit(body: AdmissionIn, clinic: ClinicDep, user: SessionRunner) -> SessionOut:
    """Start the patient's session on the chair, measured by the cuff. The course session
    number is counted from the patient's earlier sessions."""
    started = await clinic.admit(
        body.patient_id,
        body.chair_id,
        by=user,
        protocol=body.protocol,
        cuff_address=body.cuff_address,
        confirm=body.confirm,
        reason=body.reason,
    )
    return SessionOut.model_validate(started)

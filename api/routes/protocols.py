"""The clinic's protocols, read-only (issue #14): the numbers its rules run on.

Every role reads them: the admin's protocol screen shows them, and the dose form takes
its defaults (drug, route, amount) from the session's protocol's `[doses]` table.
Changing them means editing the protocol file (README "where the clinical numbers live").
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from api.deps import ClinicDep, Reader
from api.errors import AUTH_ERRORS, NOT_FOUND
from vitalsd.errors import NotFound
from vitalsd.protocol_numbers import protocol_numbers

router = APIRouter(prefix="/api/protocols", tags=["protocols"], responses=AUTH_ERRORS)

ProtocolName = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")]
Numbers = dict[str, float | int | bool | str | list[str]]


class ProtocolSummary(BaseModel):
    name: str
    title: str
    active: bool = Field(description="The clinic's default protocol for new sessions")
    default: bool = Field(description="The same as `active` (the admission screen's word)")
    rems_monitoring_form: bool = Field(description="Sessions under it carry the REMS form")


class DoseRange(BaseModel):
    drug: str
    route: str
    min_mg: float
    max_mg: float


class DefaultDose(BaseModel):
    drug: str
    route: str
    amount_mg: float | None = Field(description="None: the clinician types the amount")


class ProtocolOut(ProtocolSummary):
    course_start_sessions: int
    baseline: Numbers
    post_dose: Numbers | None = Field(description="The check after a dose (None: no such check)")
    infusion: Numbers | None
    post_infusion: Numbers | None
    close: Numbers
    thresholds: Numbers = Field(description="Alert thresholds, mmHg and beats per minute")
    safety: Numbers = Field(description="The [safety] table; durations in minutes")
    doses: list[DoseRange] = Field(description="The [doses] table: plausible mg per drug, route")
    default_dose: DefaultDose | None = Field(description="What the dose form starts from")


@router.get("", response_model=list[ProtocolSummary])
async def list_protocols(clinic: ClinicDep, user: Reader) -> list[ProtocolSummary]:
    """The protocols loaded, the clinic's default first, then by name."""
    found = sorted(
        clinic.protocols.values(), key=lambda p: (p.name != clinic.default_protocol, p.name)
    )
    return [
        ProtocolSummary(
            name=p.name,
            title=p.title,
            active=p.name == clinic.default_protocol,
            default=p.name == clinic.default_protocol,
            rems_monitoring_form=p.rems_monitoring_form,
        )
        for p in found
    ]


@router.get("/{name}", response_model=ProtocolOut, responses=NOT_FOUND)
async def get_protocol(name: ProtocolName, clinic: ClinicDep, user: Reader) -> ProtocolOut:
    protocol = clinic.protocols.get(name)
    if protocol is None:
        raise NotFound(f"no protocol named {name!r}")
    default = protocol.name == clinic.default_protocol
    return ProtocolOut(**protocol_numbers(protocol), active=default, default=default)

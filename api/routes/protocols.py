"""The protocols a session may start under (issue #14: admission picks one, the
clinic's default preselected)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ClinicDep, Reader
from api.errors import AUTH_ERRORS
from api.history_schemas import ProtocolOut

router = APIRouter(prefix="/api/protocols", tags=["protocols"], responses=AUTH_ERRORS)


@router.get("", response_model=list[ProtocolOut])
async def list_protocols(clinic: ClinicDep, user: Reader) -> list[ProtocolOut]:
    """Every loaded protocol, the clinic's default first."""
    ordered = sorted(
        clinic.protocols.values(), key=lambda p: (p.name != clinic.default_protocol, p.name)
    )
    return [
        ProtocolOut(
            name=p.name,
            title=p.title,
            default=p.name == clinic.default_protocol,
            rems_monitoring_form=p.rems_monitoring_form,
        )
        for p in ordered
    ]

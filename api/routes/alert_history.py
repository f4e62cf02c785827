"""The alarm history (issue #14): every alert of a chair, a patient, a priority or a time
range, with who acknowledged, snoozed, escalated or resolved it and when, read from the
alert rows and the audit log. Paged newest first with a cursor (`before_id`)."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Query
from pydantic import Field

from api.deps import ClinicDep, Reader
from api.errors import AUTH_ERRORS, NOT_FOUND
from api.params import MAX_ID
from api.schemas import AlertOut, Out, TimeIn, TimeOut
from vitalsd.domain import Priority
from vitalsd.errors import NotFound

router = APIRouter(prefix="/api/alerts", tags=["alerts"], responses=AUTH_ERRORS)

MAX_HISTORY_PAGE: Final = 200


class AlertTransitionOut(Out):
    at: TimeOut
    actor: str = Field(description="Who (a user name, or `system` for the rules)")
    action: str = Field(description="raised, acknowledged, snoozed, escalated, resolved, ...")
    from_state: str | None
    to_state: str | None
    note: str | None


class AlertHistoryOut(AlertOut):
    patient_id: int | None
    transitions: list[AlertTransitionOut] = Field(description="Oldest first")


class AlertHistoryPage(Out):
    items: list[AlertHistoryOut]
    next_before_id: int | None = Field(
        description="Pass as `before_id` for the next (older) page; null on the last page"
    )


OptionalId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


@router.get("/history", response_model=AlertHistoryPage, responses=NOT_FOUND)
async def alert_history(
    clinic: ClinicDep,
    user: Reader,
    chair_id: OptionalId = None,
    patient_id: OptionalId = None,
    priority: Priority | None = None,
    since: Annotated[
        TimeIn | None, Query(alias="from", description="Raised at or after (ISO 8601)")
    ] = None,
    until: Annotated[
        TimeIn | None, Query(alias="to", description="Raised before (ISO 8601)")
    ] = None,
    before_id: OptionalId = None,
    limit: Annotated[int, Query(ge=1, le=MAX_HISTORY_PAGE)] = 50,
) -> AlertHistoryPage:
    """Alerts newest first, each with its transitions (who and when)."""
    if patient_id is not None:
        await clinic.get_patient(patient_id)
    if chair_id is not None and all(c.id != chair_id for c in await clinic.list_chairs()):
        raise NotFound(f"no chair {chair_id}")
    found = await clinic.alert_history(
        chair_id=chair_id,
        patient_id=patient_id,
        priority=priority,
        since=since,
        until=until,
        before_id=before_id,
        limit=limit,
    )
    items = [
        AlertHistoryOut.model_validate(
            {
                **entry.alert.as_dict(),
                "patient_id": entry.patient_id,
                "transitions": [t.as_dict() for t in entry.transitions],
            }
        )
        for entry in found
    ]
    return AlertHistoryPage(
        items=items, next_before_id=items[-1].id if len(items) == limit else None
    )

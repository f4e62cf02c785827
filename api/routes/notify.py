"""Receipts of an alert's notifications (issue #15): who was told, through which
channel, and how far each message got."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter

from api.deps import ClinicDep, Reader
from api.errors import AUTH_ERRORS, NOT_FOUND
from api.params import IdPath
from api.schemas import Out
from vitalsd.notify.receipts import receipts_of

router = APIRouter(prefix="/api/alerts", tags=["alerts"], responses=AUTH_ERRORS)


class ReceiptOut(Out):
    """`state`: queued -> sent -> delivered -> shown -> acknowledged, or failed (`detail`
    says why) or cancelled (the alert was acknowledged, snoozed or resolved first)."""

    key: str
    alert_id: int
    channel: str
    recipient: str
    tier: int
    transition: str
    state: str
    detail: str | None
    attempts: int
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    shown_at: datetime | None
    acknowledged_at: datetime | None


@router.get("/{alert_id}/receipts", response_model=list[ReceiptOut], responses=NOT_FOUND)
async def alert_receipts(alert_id: IdPath, clinic: ClinicDep, user: Reader) -> list[ReceiptOut]:
    """Every notification of the alert and its receipt, oldest first."""
    await clinic.get_alert(alert_id)  # 404 for an unknown alert
    async with clinic.read_snapshot() as session:
        found = await receipts_of(session, alert_id)
    return [ReceiptOut.model_validate(r) for r in found]

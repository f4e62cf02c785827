"""Receipts: how far each notification got, per alert and recipient.

`queued -> sent -> delivered -> shown -> acknowledged`, or `failed` (with why), or
`cancelled` (the alert was acknowledged, snoozed or resolved before it went out). A
receipt never moves backwards; the row is the outbox's own (`notify_receipts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy
from sqlalchemy import Connection, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from vitalsd.store.models import NotifyReceipt

RECEIPT_STATES = ("queued", "sent", "delivered", "shown", "acknowledged", "failed")
# Beside the contract's states: queued, then not sent because the chain stopped.
CANCELLED = "cancelled"
# The forward order; `failed` and `cancelled` are ends of their own.
PROGRESS = ("queued", "sent", "delivered", "shown", "acknowledged")
# A tier counts as answered (no early escalation) once a recipient got it this far.
CONFIRMED = frozenset({"delivered", "shown", "acknowledged"})
_STAMP = {
    "sent": "sent_at",
    "delivered": "delivered_at",
    "shown": "shown_at",
    "acknowledged": "acknowledged_at",
}


def earlier_than(state: str) -> tuple[str, ...]:
    """The states a receipt may move forward from to `state`."""
    return PROGRESS[: PROGRESS.index(state)]


def _advance(connection: Connection, key: str, state: str, at: datetime) -> bool:
    values: dict[str, Any] = {"state": state, "updated_at": at, _STAMP[state]: at}
    result = connection.execute(
        update(NotifyReceipt)
        .where(NotifyReceipt.key == key, NotifyReceipt.state.in_(earlier_than(state)))
        .values(**values)
    )
    return bool(result.rowcount)


def mark_shown(engine: sqlalchemy.Engine, key: str, at: datetime) -> bool:
    """A device showed the notification (the service worker said so). True if a
    receipt with that key exists and moved forward; never moves backwards."""
    with engine.begin() as connection:
        return _advance(connection, key, "shown", at)


async def mark_shown_async(engine: AsyncEngine, key: str, at: datetime) -> bool:
    """`mark_shown` on an async engine."""
    async with engine.begin() as connection:
        return await connection.run_sync(_advance, key, "shown", at)


async def mark_shown_in(session: AsyncSession, key: str, at: datetime) -> bool:
    """`mark_shown` in a transaction of the caller's: an API route uses
    `clinic.side_transaction()`, which on SQLite writes in turn with the clinic's writer
    (a second writing connection would fail with "database is locked")."""
    connection = await session.connection()
    return await connection.run_sync(_advance, key, "shown", at)


@dataclass(frozen=True)
class ReceiptView:
    """A receipt as the API shows it under its alert."""

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


async def receipts_of(where: AsyncEngine | AsyncSession, alert_id: int) -> Sequence[ReceiptView]:
    """Every receipt of an alert, oldest first (an engine, or a read transaction such as
    `clinic.read_snapshot()`)."""
    if isinstance(where, AsyncSession):
        return await _receipts(where, alert_id)
    async with AsyncSession(where) as session:
        return await _receipts(session, alert_id)


async def _receipts(session: AsyncSession, alert_id: int) -> Sequence[ReceiptView]:
    rows = (
        await session.execute(
            select(NotifyReceipt.__table__)
            .where(NotifyReceipt.alert_id == alert_id)
            .order_by(NotifyReceipt.id)
        )
    ).mappings()
    return [
        ReceiptView(**{name: row[name] for name in ReceiptView.__dataclass_fields__})
        for row in rows
    ]

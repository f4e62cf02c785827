"""Row lookups every service shares: a row by id (or `NotFound`), a chair's open
session, a cuff's device row (made on first sight)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vitalsd.domain import ConnectionState
from vitalsd.errors import NotFound
from vitalsd.store import models


async def get(session: AsyncSession, model: type[Any], id: int, what: str) -> Any:
    row = await session.get(model, id)
    if row is None:
        raise NotFound(f"no {what} with id {id}")
    return row


async def open_session_of_chair(session: AsyncSession, chair_id: int) -> models.Session | None:
    result = await session.scalars(
        select(models.Session).where(
            models.Session.chair_id == chair_id, models.Session.closed_at.is_(None)
        )
    )
    return result.first()


async def ensure_device(session: AsyncSession, address: str, now: datetime) -> models.Device:
    """The cuff's device row; a cuff not seen before gets one, first seen `now`."""
    device = await session.scalar(select(models.Device).where(models.Device.address == address))
    if device is None:
        device = models.Device(
            address=address, connection_state=ConnectionState.UNKNOWN.value, first_seen_at=now
        )
        session.add(device)
        await session.flush()
    return device

"""Row lookups every service shares: a row by id (or `NotFound`), a chair's open
session, a cuff's device row (made on first sight), a user by name up to case."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from vitalsd.accounts import refuse_last_admin
from vitalsd.domain import AlertState, ConnectionState, Role
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


def user_named(username: str) -> Select[Any]:
    """The user whose name is `username` up to case (names are case-insensitive)."""
    return select(models.User).where(models.User.username_key == models.username_key(username))


async def user_row(session: AsyncSession, username: str) -> models.User:
    row: models.User | None = await session.scalar(user_named(username))
    if row is None:
        raise NotFound(f"no user {username!r}")
    return row


async def guard_last_admin(session: AsyncSession, row: models.User) -> None:
    """Refuse to take `row` out of the active admins if it is the last one."""
    if row.role != Role.ADMIN.value or row.disabled:
        return
    others = await session.scalar(
        select(func.count(models.User.id)).where(
            models.User.role == Role.ADMIN.value,
            models.User.disabled.is_(False),
            models.User.id != row.id,
        )
    )
    refuse_last_admin(int(others or 0))


def open_alerts_of(session_ids: Sequence[int]) -> Select[models.Alert]:
    """The sessions' alerts not yet resolved, oldest first (one query for one or many)."""
    return (
        select(models.Alert)
        .where(
            models.Alert.session_id.in_(session_ids),
            models.Alert.state != AlertState.RESOLVED.value,
        )
        .order_by(models.Alert.id)
    )


async def open_alert_rows(session: AsyncSession, session_id: int) -> list[models.Alert]:
    """The session's alerts not yet resolved, oldest first."""
    return list(await session.scalars(open_alerts_of([session_id])))


RowT = TypeVar("RowT")


async def rows_by_session(
    session: AsyncSession, model: type[RowT], ids: list[int], *order: Any
) -> dict[int, list[RowT]]:
    """A session's rows of `model` (doses, readings, alerts, side effects) for each of
    `ids`, in `order`, in one query."""
    grouped: dict[int, list[RowT]] = {i: [] for i in ids}
    column: Any = model.session_id  # type: ignore[attr-defined]
    for row in await session.scalars(select(model).where(column.in_(ids)).order_by(*order)):
        grouped[row.session_id].append(row)  # type: ignore[attr-defined]
    return grouped

"""Chairs in service (issue #14): an admin renames a chair or retires it.

A retired chair leaves the ward and takes no new session, but stays in the database:
its past sessions (and their reports) name it. Retiring one with an open session would
leave a patient on a chair nobody watches, so it is refused.
"""

from __future__ import annotations

from sqlalchemy import select

from vitalsd import views
from vitalsd.auth import Actor
from vitalsd.domain import AuditAction
from vitalsd.errors import Conflict
from vitalsd.store import models
from vitalsd.store.events import EventType

from .lookups import ensure_device, get, open_session_of_chair
from .rows import device_view, text
from .unit_of_work import UnitOfWork


def chair_view(row: models.Chair, session_id: int | None = None) -> views.ChairView:
    return views.ChairView(row.id, row.name, row.cuff_address, session_id, row.retired_at)


class Chairs:
    """Writes that change a chair itself (its cuff is the registry's), audited."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def rename_chair(self, chair_id: int, name: str, *, by: Actor) -> views.ChairView:
        """Give the chair another name (unique, like at creation; 409 when taken)."""
        label = str(text(name, "name", required=True))
        async with self._uow.transaction() as tx:
            chair = await get(tx.session, models.Chair, chair_id, "chair")
            here = await open_session_of_chair(tx.session, chair.id)
            if chair.name == label:
                return chair_view(chair, here.id if here else None)
            taken = await tx.session.scalar(
                select(models.Chair.id).where(
                    models.Chair.name == label, models.Chair.id != chair.id
                )
            )
            if taken is not None:
                raise Conflict(f"a chair named {label!r} exists (id {taken})")
            previous, chair.name = chair.name, label
            await tx.session.flush()
            tx.audit(
                by.username,
                AuditAction.RENAMED,
                "chair",
                chair.id,
                from_state=previous,
                to_state=label,
            )
            view = chair_view(chair, here.id if here else None)
            tx.emit(EventType.CHAIR_UPDATED, view.as_dict())
            return view

    async def retire_chair(self, chair_id: int, *, by: Actor) -> views.ChairView:
        """Take the chair out of service: off the ward, its cuff released. 409 while it
        has an open session (close it first) or when it is retired already."""
        async with self._uow.transaction() as tx:
            chair = await get(tx.session, models.Chair, chair_id, "chair")
            if chair.retired_at is not None:
                raise Conflict(f"chair {chair.name!r} is retired already")
            here = await open_session_of_chair(tx.session, chair.id)
            if here is not None:
                raise Conflict(
                    f"chair {chair.name!r} has an open session (id {here.id}): close it "
                    "before retiring the chair"
                )
            cuff, chair.cuff_address = chair.cuff_address, None
            chair.retired_at = tx.now
            await tx.session.flush()
            tx.audit(by.username, AuditAction.RETIRED, "chair", chair.id, from_state=cuff)
            if cuff is not None:
                # Every daemon forgets that cuff's chair, as when it is unassigned.
                released = await ensure_device(tx.session, cuff, tx.now)
                tx.emit(EventType.DEVICE_STATUS, device_view(released, None).as_dict())
            view = chair_view(chair)
            tx.emit(EventType.CHAIR_UPDATED, view.as_dict())
            return view

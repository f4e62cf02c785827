"""Admission: a patient onto an empty chair with its cuff, in one call (issue #14: the
clinic's day from the tablet; a clinician admits, and the chair's cuff is part of it).

Checks first, on the readers' pool, what would make the admission fail (no such chair
or patient, the chair or the patient already in a session, an unknown protocol), so a
refused admission moves no cuff; then binds the cuff (the registry's own rule: a cuff
taken from a chair in session needs `confirm` and a `reason`, audited; else `Conflict`)
and starts the session. Two transactions: a cuff moved for an admission that another
tablet beat by a moment stays on the chair it was moved to, audited as moved."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vitalsd import views
from vitalsd.auth import Actor
from vitalsd.errors import Conflict, InvalidInput
from vitalsd.store import models

from .lookups import get, open_session_of_chair
from .registry import Registry
from .sessions import Sessions


class Admission:
    def __init__(
        self,
        reads: async_sessionmaker[AsyncSession],
        registry: Registry,
        sessions: Sessions,
        protocols: Collection[str],
    ) -> None:
        self._reads = reads
        self._registry = registry
        self._sessions = sessions
        self._protocols = protocols

    async def admit(
        self,
        patient_id: int,
        chair_id: int,
        *,
        by: Actor,
        protocol: str | None = None,
        cuff_address: str | None = None,
        confirm: bool = False,
        reason: str | None = None,
    ) -> views.SessionView:
        """Start the patient's session on the chair under `protocol` (the clinic's
        default if None), measured by `cuff_address` (None: the chair's cuff, if any)."""
        if protocol is not None and protocol not in self._protocols:
            raise InvalidInput(
                f"unknown protocol {protocol!r} (one of {', '.join(self._protocols)})"
            )
        async with self._reads() as db:
            patient = await get(db, models.Patient, patient_id, "patient")
            chair = await get(db, models.Chair, chair_id, "chair")
            busy = await open_session_of_chair(db, chair.id)
            if busy is not None:
                raise Conflict(f"chair {chair.name!r} has an open session (id {busy.id})")
            already = await db.scalar(
                select(models.Session.id).where(
                    models.Session.patient_id == patient.id, models.Session.closed_at.is_(None)
                )
            )
            if already is not None:
                raise Conflict(f"the patient is in an open session (id {already})")
            current = chair.cuff_address
        if cuff_address is not None and cuff_address.strip().upper() != (current or ""):
            await self._registry.assign_cuff(
                chair_id, cuff_address, by=by, confirm=confirm, reason=reason
            )
        return await self._sessions.start_session(patient_id, chair_id, by=by, protocol=protocol)

"""Registry: patients, chairs and their cuffs, users: who and what the clinic knows."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from vitalsd import views
from vitalsd.auth import SYSTEM_ACTOR, Actor
from vitalsd.domain import AuditAction, Role
from vitalsd.errors import Conflict
from vitalsd.store import models
from vitalsd.store.events import EventType
from vitalsd.timebounds import plausible_date_of_birth

from .lookups import ensure_device, get, guard_last_admin, open_session_of_chair, user_row
from .rows import device_view, patient_view, text, user_view
from .unit_of_work import UnitOfWork


class Registry:
    """Writes of the clinic's registry, each one transaction with its audit."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def create_patient(
        self, identifier: str, display_name: str, date_of_birth: date, *, by: Actor
    ) -> views.PatientView:
        ident = text(identifier, "identifier", required=True)
        name = text(display_name, "display_name", required=True)
        async with self._uow.transaction() as tx:
            plausible_date_of_birth(date_of_birth, tx.now.date())
            exists = await tx.session.scalar(
                select(models.Patient.id).where(models.Patient.identifier == ident)
            )
            if exists is not None:
                raise Conflict(f"a patient with identifier {ident!r} exists (id {exists})")
            row = models.Patient(
                identifier=ident, display_name=name, date_of_birth=date_of_birth, created_at=tx.now
            )
            await tx.insert(row)
            tx.audit(by.username, AuditAction.CREATED, "patient", row.id)
            return patient_view(row)

    async def create_chair(self, name: str, *, by: Actor) -> views.ChairView:
        label = text(name, "name", required=True)
        async with self._uow.transaction() as tx:
            exists = await tx.session.scalar(
                select(models.Chair.id).where(models.Chair.name == label)
            )
            if exists is not None:
                raise Conflict(f"a chair named {label!r} exists (id {exists})")
            row = models.Chair(
                name=label, cuff_address=None, created_at=tx.now, site=self._uow.site
            )
            await tx.insert(row)
            tx.audit(by.username, AuditAction.CREATED, "chair", row.id)
            return views.ChairView(row.id, row.name, None, None)

    async def assign_cuff(
        self,
        chair_id: int,
        address: str | None,
        *,
        by: Actor,
        confirm: bool = False,
        reason: str | None = None,
    ) -> views.ChairView:
        """Bind a cuff to a chair (None unbinds). A chair has at most one cuff and a cuff
        one chair (DESIGN.md "Cuffs and chairs"). Taking a cuff away from a chair with an
        open session, or putting one on a chair whose open session has another cuff,
        changes whose readings go where: it needs `confirm` and a `reason` (audited),
        else `Conflict` (finding 7: another chair's patient's reading went into this
        patient's record after one toast)."""
        cuff = None if address is None else text(address, "address", required=True)
        why = text(reason, "reason")
        async with self._uow.transaction() as tx:
            chair = await get(tx.session, models.Chair, chair_id, "chair")
            if chair.retired_at is not None and cuff is not None:
                raise Conflict(f"chair {chair.name!r} is retired: it takes no cuff")
            await self._uow.memory.require_site(tx.session, chair.id)
            cuff = None if cuff is None else cuff.upper()
            previous = chair.cuff_address
            disturbed: list[str] = []
            here = await open_session_of_chair(tx.session, chair.id)
            if here is not None and previous is not None and previous != cuff:
                disturbed.append(
                    f"chair {chair.name!r} has an open session measured by cuff {previous}"
                )
            holder = None
            if cuff is not None:
                holder = await tx.session.scalar(
                    select(models.Chair).where(
                        models.Chair.cuff_address == cuff, models.Chair.id != chair_id
                    )
                )
                if holder is not None and await open_session_of_chair(tx.session, holder.id):
                    disturbed.append(
                        f"cuff {cuff} is in use on chair {holder.name!r}, which has an open session"
                    )
            if disturbed and not (confirm and why):
                raise Conflict(
                    "; ".join(disturbed)
                    + ": moving it changes whose record its readings go to. Send "
                    '"confirm": true and a "reason" to do it anyway'
                )
            note = why if disturbed else None
            if holder is not None:
                holder.cuff_address = None
                await tx.session.flush()
                tx.audit(
                    by.username,
                    AuditAction.CUFF_UNASSIGNED,
                    "chair",
                    holder.id,
                    from_state=cuff,
                    note=note or cuff,
                )
            device = None if cuff is None else await ensure_device(tx.session, cuff, tx.now)
            chair.cuff_address = cuff
            await tx.session.flush()
            tx.audit(
                by.username,
                AuditAction.CUFF_ASSIGNED if cuff else AuditAction.CUFF_UNASSIGNED,
                "chair",
                chair.id,
                from_state=previous,
                to_state=cuff,
                note=note,
                session_id=here.id if here else None,
            )
            if previous is not None and previous != cuff:
                # Every daemon forgets that cuff's chair (#16: else another node keeps
                # filing its readings under this chair's session).
                released = await ensure_device(tx.session, previous, tx.now)
                tx.emit(EventType.DEVICE_STATUS, device_view(released, None).as_dict())
            if device is not None:
                tx.emit(EventType.DEVICE_STATUS, device_view(device, chair.id).as_dict())
            return views.ChairView(
                chair.id,
                chair.name,
                chair.cuff_address,
                here.id if here else None,
            )

    async def create_user(
        self, username: str, password_hash: str, role: Role, *, by: Actor = SYSTEM_ACTOR
    ) -> views.UserView:
        name = text(username, "username", required=True)
        async with self._uow.transaction(wake=False) as tx:
            exists = await tx.session.scalar(
                select(models.User.username).where(
                    models.User.username_key == models.username_key(str(name))
                )
            )
            if exists is not None:
                raise Conflict(f"user {exists!r} exists (usernames ignore case)")
            row = models.User(
                username=name,
                password_hash=password_hash,
                role=Role(role).value,
                disabled=False,
                created_at=tx.now,
            )
            await tx.insert(row)
            tx.audit(by.username, AuditAction.CREATED, "user", row.id, to_state=row.role)
            return user_view(row)

    async def set_user_disabled(
        self, username: str, disabled: bool, *, by: Actor
    ) -> views.UserView:
        async with self._uow.transaction(wake=False) as tx:
            row = await user_row(tx.session, username)
            if disabled and not row.disabled:
                await guard_last_admin(tx.session, row)
                row.token_version += 1  # its tokens end at once, and stay ended
            row.disabled = disabled
            tx.audit(
                by.username,
                AuditAction.DISABLED if disabled else AuditAction.ENABLED,
                "user",
                row.id,
            )
            return user_view(row)

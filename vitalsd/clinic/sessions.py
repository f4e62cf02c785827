"""Sessions: check-in, doses and infusion stops, side effects, waived checks, close;
each a transaction that the pure evaluation (`vitalsd.evaluation`) then settles."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from vitalsd import views
from vitalsd.auth import Actor
from vitalsd.domain import (
    AuditAction,
    CheckKind,
    CheckState,
    DoseFlag,
    Drug,
    ObservedSideEffect,
    Phase,
    Route,
    SideEffect,
    require_utc,
)
from vitalsd.errors import (
    CloseCheckMissing,
    Conflict,
    DosingHoldActive,
    InvalidInput,
    NotAllowed,
    NotFound,
)
from vitalsd.evaluation import (
    dose_flags,
    ended_with_session,
    gate_overrides,
    infusion_running,
    side_effect_alerts,
)
from vitalsd.gates import gate_close, gate_dose
from vitalsd.protocol import DoseOutOfRange, Protocol
from vitalsd.schedule import derive_dose_increase
from vitalsd.store import models
from vitalsd.timebounds import SessionSpan, session_start, within_session

from .lookups import get, open_alert_rows, open_session_of_chair
from .rows import alert_of, check_view, dose_view, side_effect_view, text
from .rules import apply_alert_changes, reevaluate, reevaluated_view
from .session_state import SessionLoader
from .unit_of_work import Tx, UnitOfWork


class Sessions:
    """The writes of a dosing session's course, each one transaction with its audit."""

    def __init__(
        self,
        uow: UnitOfWork,
        loader: SessionLoader,
        protocols: Mapping[str, Protocol],
        default_protocol: str,
        stale_after: timedelta,
    ) -> None:
        self._uow = uow
        self._loader = loader
        self._protocols = protocols
        self._default_protocol = default_protocol
        self._stale_after = stale_after

    async def start_session(
        self,
        patient_id: int,
        chair_id: int,
        *,
        by: Actor,
        protocol: str | None = None,
        started_at: datetime | None = None,
        course_session: int | None = None,
    ) -> views.SessionView:
        """Check a patient in on a chair. `started_at` in the past charts a session begun
        before it was entered; `course_session` (1 = first) defaults to the count of the
        patient's sessions so far plus one."""
        name = protocol or self._default_protocol
        chosen = self._protocols.get(name)
        if chosen is None:
            raise InvalidInput(f"unknown protocol {name!r} (one of {', '.join(self._protocols)})")
        if course_session is not None and course_session < 1:
            raise InvalidInput("course_session counts from 1")
        async with self._uow.transaction() as tx:
            start = session_start(started_at, tx.now)
            patient = await get(tx.session, models.Patient, patient_id, "patient")
            chair = await get(tx.session, models.Chair, chair_id, "chair")
            if chair.retired_at is not None:
                raise Conflict(f"chair {chair.name!r} is retired: it takes no new session")
            await self._uow.memory.require_site(tx.session, chair.id)
            busy = await open_session_of_chair(tx.session, chair.id)
            if busy is not None:
                raise Conflict(f"chair {chair.name!r} has an open session (id {busy.id})")
            already = await tx.session.scalar(
                select(models.Session.id).where(
                    models.Session.patient_id == patient.id, models.Session.closed_at.is_(None)
                )
            )
            if already is not None:
                raise Conflict(f"the patient is in an open session (id {already})")
            if course_session is None:
                earlier = await tx.session.scalar(
                    select(func.count(models.Session.id)).where(
                        models.Session.patient_id == patient.id
                    )
                )
                course_session = int(earlier or 0) + 1
            row = models.Session(
                patient_id=patient.id,
                chair_id=chair.id,
                protocol=chosen.name,
                protocol_toml=chosen.source_text,
                phase=Phase.CHECKED_IN.value,
                course_session=course_session,
                started_at=start,
                started_by=by.username,
            )
            await tx.insert(row)
            tx.audit_session(by.username, AuditAction.STARTED, row, to_state=row.phase)
            return await reevaluated_view(tx, row, self._stale_after)

    async def record_dose(
        self,
        session_id: int,
        *,
        drug: Drug | str,
        amount_mg: float,
        route: Route | str,
        by: Actor,
        given_at: datetime | None = None,
        ended_at: datetime | None = None,
        increase: bool | None = None,
        override_reason: str | None = None,
    ) -> views.DoseView:
        """Record a dose. Every dose passes the dosing gate: refused (`DosingHoldActive`)
        while a hold-range baseline or latest reading, or an unresolved severe or hold
        alert, stands, unless a clinician overrides it with a reason (then flagged
        `hold_overridden`); flagged `no_baseline` / `no_recent_bp` without a reading
        before it. `increase` None: derived from the previous session."""
        try:
            drug_value, route_value = Drug(drug), Route(route)
        except ValueError as error:
            raise InvalidInput(str(error)) from None
        if not (isinstance(amount_mg, int | float) and math.isfinite(amount_mg) and amount_mg > 0):
            raise InvalidInput(f"amount_mg must be a positive number, got {amount_mg!r}")
        reason = text(override_reason, "override_reason")
        async with self._uow.transaction() as tx:
            row = await _open_session(tx, session_id, "the session is closed")
            given = within_session(given_at, "given_at", SessionSpan(row.started_at), tx.now)
            _check_dose_amount(self._loader.protocol_of(row), drug_value, route_value, amount_mg)
            ended = None if ended_at is None else require_utc(ended_at, "ended_at")
            if ended is not None and (ended < given or ended > tx.now):
                raise InvalidInput("ended_at must be after given_at and not in the future")
            # Every dose, first or later, passes the gate (DESIGN.md "Dosing gate").
            state = await tx.reloaded_state(row)
            open_rows = {a.condition: a for a in await open_alert_rows(tx.session, row.id)}
            open_alerts = [alert_of(a) for a in open_rows.values()]
            overriding = reason is not None and by.is_clinician
            decision = gate_dose(
                state.facts, state.schedule, open_alerts, given, overridden=overriding
            )
            if decision.blocked:
                if not overriding:
                    raise DosingHoldActive(
                        f"dosing hold: {decision.refusal('the dose is')}; a clinician "
                        "overrides it with a reason"
                    )
                assert reason is not None
                await apply_alert_changes(
                    tx, gate_overrides(open_alerts, by.username, reason, tx.now), open_rows
                )
            flags = dose_flags(state.protocol, decision)
            stated = increase is not None
            if increase is None:
                increase = await self._derive_increase(tx.session, row, drug_value, amount_mg)
            dose = models.Dose(
                session_id=row.id,
                drug=drug_value.value,
                amount_mg=float(amount_mg),
                route=route_value.value,
                given_at=given,
                ended_at=ended,
                increase=increase,
                increase_stated=stated,
                flags=[f.value for f in flags],
                override_reason=reason if decision.blocked else None,
                recorded_by=by.username,
                recorded_at=tx.now,
            )
            await tx.insert(dose)
            tx.audit(
                by.username,
                AuditAction.DOSE_RECORDED,
                "dose",
                dose.id,
                session_id=row.id,
                note=f"{drug_value.value} {amount_mg:g} mg {route_value.value}"
                + (f"; hold overridden: {reason}" if decision.blocked else "")
                + ("; no baseline" if DoseFlag.NO_BASELINE in flags else ""),
            )
            await reevaluate(tx, await tx.reloaded_state(row), self._stale_after, force_event=True)
            return dose_view(dose)

    async def _derive_increase(
        self, session: AsyncSession, row: models.Session, drug: Drug, amount_mg: float
    ) -> bool:
        so_far = await session.scalar(
            select(func.coalesce(func.sum(models.Dose.amount_mg), 0.0)).where(
                models.Dose.session_id == row.id, models.Dose.drug == drug.value
            )
        )
        previous = await session.scalar(
            select(models.Session.id)
            .join(models.Dose, models.Dose.session_id == models.Session.id)
            .where(
                models.Session.patient_id == row.patient_id,
                models.Session.id != row.id,
                models.Session.started_at < row.started_at,
                models.Dose.drug == drug.value,
            )
            .order_by(models.Session.started_at.desc())
            .limit(1)
        )
        previous_total = None
        if previous is not None:
            previous_total = await session.scalar(
                select(func.sum(models.Dose.amount_mg)).where(
                    models.Dose.session_id == previous, models.Dose.drug == drug.value
                )
            )
        return derive_dose_increase(
            None if previous_total is None else float(previous_total),
            float(so_far or 0.0),
            float(amount_mg),
        )

    async def stop_infusion(
        self, session_id: int, dose_id: int, *, by: Actor, at: datetime | None = None
    ) -> views.DoseView:
        async with self._uow.transaction() as tx:
            row = await get(tx.session, models.Session, session_id, "session")
            dose = await get(tx.session, models.Dose, dose_id, "dose")
            if dose.session_id != row.id:
                raise NotFound(f"dose {dose_id} is not in session {session_id}")
            if dose.ended_at is not None:
                raise Conflict("the infusion was stopped already")
            stop = _when(tx, at, "at")
            if stop < dose.given_at or stop > tx.now:
                raise InvalidInput("the stop must be after the start and not in the future")
            dose.ended_at = stop
            tx.audit(by.username, AuditAction.INFUSION_STOPPED, "dose", dose.id, session_id=row.id)
            await reevaluate(tx, await tx.reloaded_state(row), self._stale_after, force_event=True)
            return dose_view(dose)

    async def record_side_effect(
        self,
        session_id: int,
        *,
        effect: SideEffect | str,
        severity: int,
        by: Actor,
        observed_at: datetime | None = None,
        note: str | None = None,
    ) -> views.SideEffectView:
        try:
            effect_value = SideEffect(effect)
        except ValueError:
            allowed = ", ".join(e.value for e in SideEffect)
            raise InvalidInput(f"unknown side effect {effect!r} (one of {allowed})") from None
        if isinstance(severity, bool) or not isinstance(severity, int) or not 0 <= severity <= 3:
            raise InvalidInput(f"severity is 0 (none) to 3 (severe), got {severity!r}")
        async with self._uow.transaction() as tx:
            row = await get(tx.session, models.Session, session_id, "session")
            span = SessionSpan(row.started_at, row.closed_at)
            seen = within_session(observed_at, "observed_at", span, tx.now)
            effect_row = models.SideEffect(
                session_id=row.id,
                effect=effect_value.value,
                severity=severity,
                observed_at=seen,
                note=text(note, "note"),
                recorded_by=by.username,
                recorded_at=tx.now,
            )
            await tx.insert(effect_row)
            tx.audit_session(
                by.username,
                AuditAction.SIDE_EFFECT,
                row,
                note=f"{effect_value.value} severity {severity}; side effect "
                f"{effect_row.id} observed {seen.isoformat()}",
            )
            open_rows = {a.condition: a for a in await open_alert_rows(tx.session, row.id)}
            observed = ObservedSideEffect(effect_row.id, effect_value, severity, seen, tx.now)
            changes = side_effect_alerts(
                self._loader.protocol_of(row),
                [alert_of(a) for a in open_rows.values()],
                observed,
                tx.now,
                session_id=row.id,
                chair_id=row.chair_id if row.closed_at is None else None,
            )
            await apply_alert_changes(tx, changes, open_rows)
            # A severe one asks for a check: the schedule sees the side effect now.
            await reevaluate(tx, await tx.reloaded_state(row), self._stale_after, force_event=True)
            return side_effect_view(effect_row)

    async def waive_check(self, check_id: int, reason: str, *, by: Actor) -> views.CheckView:
        """Waive a check with a reason. The close-of-session check is the clinician's."""
        why = text(reason, "reason", required=True)
        async with self._uow.transaction() as tx:
            check = await get(tx.session, models.Check, check_id, "check")
            row = await get(tx.session, models.Session, check.session_id, "session")
            if check.kind == CheckKind.CLOSE.value and not by.is_clinician:
                raise NotAllowed("only a clinician waives the close-of-session check")
            if check.state in (CheckState.SATISFIED.value, CheckState.WAIVED.value):
                raise Conflict(f"the check is {check.state} already")
            assert why is not None
            _waive(tx, check, why, by)
            await reevaluate(tx, await tx.reloaded_state(row), self._stale_after, force_event=True)
            return check_view(check, row.chair_id)

    async def close_session(
        self,
        session_id: int,
        *,
        by: Actor,
        reason: str | None = None,
        at: datetime | None = None,
    ) -> views.SessionView:
        """Close a session, through the close gate (DESIGN.md "Closing"): without the
        close-of-session reading, with a high or medium alert unresolved, or with an
        unstable latest reading, a clinician's reason is needed (`CloseCheckMissing`
        otherwise, naming what stands); it waives a missing close check. Every alert of
        the session is resolved, noting the reason."""
        why = text(reason, "reason")
        async with self._uow.transaction() as tx:
            row = await _open_session(tx, session_id, "the session is closed already")
            closing = _when(tx, at, "at")
            if closing > tx.now or closing < row.started_at:
                raise InvalidInput("the close time must be after the start and not in the future")
            state = await tx.reloaded_state(row)
            if infusion_running(state.schedule, state.facts):
                raise Conflict("an infusion is still running: stop it first")
            open_rows = {a.condition: a for a in await open_alert_rows(tx.session, row.id)}
            open_alerts = [alert_of(a) for a in open_rows.values()]
            decision = gate_close(state.facts, state.schedule, open_alerts, closing)
            if decision.blocked:
                if why is None or not by.is_clinician:
                    raise CloseCheckMissing(
                        f"{decision.refusal('closing is')}: take a reading or settle the "
                        "alerts, or a clinician closes the session with a reason"
                    )
                assert why is not None
                close_row = state.check_rows.get("close")
                if decision.close_check_missing and close_row:
                    _waive(tx, close_row, why, by)
            row.closed_at = closing
            row.closed_by = by.username
            row.close_reason = why
            tx.audit_session(
                by.username,
                AuditAction.CLOSED,
                row,
                from_state=row.phase,
                to_state=Phase.CLOSED.value,
                note=why,
            )
            # A closed session leaves nothing on its chair: every alert of it is resolved.
            await apply_alert_changes(
                tx, ended_with_session(open_alerts, tx.now, by.username, why), open_rows
            )
            return await reevaluated_view(tx, row, self._stale_after)


def _waive(tx: Tx, check: models.Check, reason: str, by: Actor) -> None:
    """A user waives a check, with a reason the schedule keeps (`SessionFacts.waivers`)."""
    check.waiver_reason = reason
    check.waived_by = by.username
    check.waived_at = tx.now
    tx.audit(
        by.username,
        AuditAction.WAIVED,
        "check",
        check.id,
        session_id=check.session_id,
        from_state=check.state,
        to_state=CheckState.WAIVED.value,
        note=reason,
    )


async def _open_session(tx: Tx, session_id: int, closed: str) -> models.Session:
    """The session's row; `Conflict(closed)` if it is closed."""
    row: models.Session = await get(tx.session, models.Session, session_id, "session")
    if row.closed_at is not None:
        raise Conflict(closed)
    return row


def _when(tx: Tx, moment: datetime | None, name: str) -> datetime:
    """When a user says something happened: now, unless given (in UTC)."""
    return tx.now if moment is None else require_utc(moment, name)


def _check_dose_amount(protocol: Protocol, drug: Drug, route: Route, amount_mg: float) -> None:
    """The dose's amount and route within the session's protocol file's `[doses]`."""
    try:
        protocol.doses.check(drug.value, route.value, float(amount_mg))
    except DoseOutOfRange as error:
        raise InvalidInput(str(error)) from None

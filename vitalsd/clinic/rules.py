"""The shell of the pure evaluation: asks `vitalsd.evaluation` what a session's facts and
the time make of it, then stores and announces exactly that (checks, alert changes with
their audit, phase) in the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vitalsd import views
from vitalsd.alerts import SYSTEM, AlarmPolicy, AlertChange, AuditEntry
from vitalsd.domain import AlertKind, AlertState, AuditAction, CheckState, Phase
from vitalsd.evaluation import NO_LONGER_REQUIRED, StaleWatch, alarm_policy, evaluate
from vitalsd.store import models
from vitalsd.store.events import EventType

from .rows import alert_of, alert_view, check_view, reading_facts, stored_check, write_alert
from .session_state import SessionLoader, SessionState
from .unit_of_work import Tx


async def reevaluate(
    tx: Tx,
    state: SessionState,
    stale_after: timedelta,
    *,
    trigger: models.Reading | None = None,
    force_event: bool = False,
) -> views.SessionView | None:
    """Bring a session's checks, alerts and phase up to date with its facts and the
    time; emit what changed. `state` is the writer's (`Tx.state_for`), kept up to date
    here. Returns the session as `session_updated` showed it (None: unchanged, no
    event); the changed rows are written at the latest at commit."""
    row, now = state.row, tx.now
    for condition in [
        c for c, a in state.alert_rows.items() if a.state == AlertState.RESOLVED.value
    ]:
        del state.alert_rows[condition]
    stale = StaleWatch.of(state.facts, stale_after)
    result = evaluate(
        state.facts,
        state.schedule,
        state.protocol,
        [alert_of(a) for a in state.alert_rows.values()],
        {key: stored_check(c) for key, c in state.check_rows.items()},
        now,
        None if trigger is None else reading_facts(trigger),
        phase=Phase(row.phase),
        stale=stale,
        stale_raised_since_deadline=stale.is_due(now)
        and await _stale_raised_since(tx, row.id, stale),
        session_id=row.id,
        chair_id=row.chair_id,
        patient_name=await _late_reading_patient(tx, row, trigger),
    )

    # 1. Checks: each stored with its state; due and overdue announced.
    changed: list[tuple[CheckState, models.Check]] = []
    for update in result.checks:
        check = update.check
        check_row = state.check_rows.get(check.key)
        new = check_row is None
        if check_row is None:
            check_row = models.Check(
                session_id=row.id,
                key=check.key,
                waiver_reason=None,
                waived_by=None,
                waived_at=None,
            )
            tx.session.add(check_row)
            state.check_rows[check.key] = check_row
        values = {
            "kind": check.kind.value,
            "label": check.label,
            "window_start": check.window_start,
            "window_end": check.window_end,
            "state": check.state.value,
            "satisfied_by": check.satisfied_by,
            "required": True,
        }
        if check_row.waived_by is None:
            values["waiver_reason"] = check.waiver_reason
        for name, value in values.items():
            # Only what changed: no work for the flush when nothing did.
            if new or getattr(check_row, name) != value:
                setattr(check_row, name, value)
        if update.changed:
            changed.append((check.state, check_row))
    if changed:
        await tx.session.flush()  # new checks get their ids
    for check_state, check_row in changed:
        if check_state is CheckState.DUE:
            tx.emit(EventType.CHECK_DUE, check_view(check_row, row.chair_id).as_dict())
        elif check_state is CheckState.OVERDUE:
            tx.emit(EventType.CHECK_OVERDUE, check_view(check_row, row.chair_id).as_dict())
    for dropped in result.dropped:
        check_row = state.check_rows[dropped.key]
        check_row.required = False
        if dropped.waived:
            check_row.state = CheckState.WAIVED.value
            check_row.waiver_reason = NO_LONGER_REQUIRED

    # 2. Alerts, in the order decided.
    for decision in result.alerts:
        change = decision.change
        if change.before is None and decision.check_key is not None:
            check_id = state.check_rows[decision.check_key].id
            change = replace(change, after=replace(change.after, check_id=check_id))
        await apply_alert_changes(tx, [change], state.alert_rows)

    # 3. Phase.
    if result.phase_changed:
        tx.audit_session(
            SYSTEM, AuditAction.PHASE, row, from_state=row.phase, to_state=result.phase.value
        )
        row.phase = result.phase.value
    if not (force_event or result.session_changed):
        return None
    view = state.view(now)
    tx.emit(EventType.SESSION_UPDATED, view.as_dict())
    return view


async def _late_reading_patient(
    tx: Tx, row: models.Session, trigger: models.Reading | None
) -> str | None:
    """The patient's name when a reading arrives for a closed session (a late reading's
    alert names them); otherwise not looked up."""
    if trigger is None or row.closed_at is None:
        return None
    patient = await tx.session.get(models.Patient, row.patient_id)
    return None if patient is None else patient.display_name


async def _stale_raised_since(tx: Tx, session_id: int, stale: StaleWatch) -> bool:
    """Whether a stale alert of the session (resolved or not) was raised at or after the
    deadline: then it is not raised again before a reading moves the deadline."""
    raised = await tx.session.scalar(
        select(models.Alert.id).where(
            models.Alert.session_id == session_id,
            models.Alert.kind == AlertKind.STALE.value,
            models.Alert.raised_at >= stale.deadline,
        )
    )
    return raised is not None


async def reevaluated_view(
    tx: Tx, row: models.Session, stale_after: timedelta
) -> views.SessionView:
    """Re-evaluate a session a user changed and return it (always announced)."""
    state = await tx.reloaded_state(row)
    view = await reevaluate(tx, state, stale_after, force_event=True)
    assert view is not None  # forced: the event and its view are always made
    return view


async def apply_alert_changes(
    tx: Tx, changes: Iterable[AlertChange], rows_by_condition: dict[str, models.Alert]
) -> None:
    """Persist decisions of the alert state machine, with their audit and events."""
    for change in changes:
        row = rows_by_condition.get(change.after.condition) if change.before else None
        if row is None:
            row = models.Alert(site=tx.site)
            tx.session.add(row)
        write_alert(row, change.after)
        await tx.session.flush()
        audit_alert(tx, row, change.audit)
        if change.before is None:
            tx.emit(EventType.ALERT, alert_view(row).as_dict())
        else:
            tx.emit(EventType.ALERT_UPDATED, alert_event(row, change.audit))
        if row.state == AlertState.RESOLVED.value:
            rows_by_condition.pop(row.condition, None)
        else:
            rows_by_condition[row.condition] = row


# Updates that sound again: the tablets notify anew (DESIGN.md "Alarm behaviour").
SOUNDS_AGAIN = frozenset({AuditAction.ESCALATED, AuditAction.RENOTIFIED, AuditAction.WORSENED})


def alert_event(row: models.Alert, audit: AuditEntry) -> dict[str, Any]:
    """An `alert_updated` event's data: the alert as shown, and why it changed
    (`reason`: the transition, e.g. `worsened`, `renotified`, `condition_cleared`,
    `condition_returned`, `latest_value`); `renotify` when it sounds again."""
    data = alert_view(row).as_dict()
    data["reason"] = audit.action.value
    if audit.action in SOUNDS_AGAIN:
        data["renotify"] = True
    return data


async def alarm_policy_of(
    session: AsyncSession, loader: SessionLoader, row: models.Alert, default: AlarmPolicy
) -> AlarmPolicy:
    """The alarm behaviour of an alert: its session's protocol's, else the clinic's."""
    if row.session_id is None:
        return default
    session_row = await session.get(models.Session, row.session_id)
    if session_row is None:
        return default
    return alarm_policy(loader.protocol_of(session_row).safety)


def audit_alert(tx: Tx, row: models.Alert, audit: AuditEntry) -> None:
    tx.audit(
        audit.by,
        audit.action,
        "alert",
        row.id,
        session_id=row.session_id,
        from_state=audit.from_state.value if audit.from_state else None,
        to_state=audit.to_state.value,
        note=audit.note,
        at=audit.at,
    )

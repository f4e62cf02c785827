"""Alerting: what users do to alerts (acknowledge, snooze, resolve), through the pure
alert state machine (`vitalsd.alerts`), audited and announced as `alert_updated`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vitalsd import views
from vitalsd.alerts import AlarmPolicy, Alert, AuditEntry
from vitalsd.auth import Actor
from vitalsd.domain import AlertKind
from vitalsd.errors import NotAllowed
from vitalsd.store import models
from vitalsd.store.events import EventType

from .lookups import get
from .rows import alert_of, alert_view, write_alert
from .rules import alarm_policy_of, alert_event, audit_alert
from .session_state import SessionLoader
from .unit_of_work import UnitOfWork

Steps = list[tuple[Alert, AuditEntry]]


class Alerting:
    """User transitions of alerts, each one cached transaction, with the alarm behaviour
    of the alert's session's protocol (snoozes add up; a latched alert acknowledged after
    its condition cleared is done)."""

    def __init__(
        self,
        uow: UnitOfWork,
        reads: async_sessionmaker[AsyncSession],
        loader: SessionLoader,
        max_snooze: timedelta,
        default_policy: AlarmPolicy,
    ) -> None:
        self._uow = uow
        self._reads = reads
        self._loader = loader
        self._max_snooze = max_snooze
        self._default_policy = default_policy

    async def _alert_transition(
        self, alert_id: int, step: Callable[[Alert, datetime, AlarmPolicy], Steps]
    ) -> views.AlertView:
        # The writer keeps the open alerts of the sessions it remembers: the one changed
        # here is that same row (attached first), so the memory follows the change.
        async with self._uow.cached_transaction() as tx:
            await tx.attach_session_with_alert(alert_id)
            row = await get(tx.session, models.Alert, alert_id, "alert")
            if row.chair_id is not None:
                await self._uow.memory.require_site(tx.session, row.chair_id)
            policy = await alarm_policy_of(tx.session, self._loader, row, self._default_policy)
            for after, audit in step(alert_of(row), tx.now, policy):
                write_alert(row, after)
                await tx.session.flush()
                audit_alert(tx, row, audit)
                # Each step is announced with why (`reason`), e.g. `acknowledged` then
                # `resolved` for a latched alert acknowledged after its condition cleared.
                tx.emit(EventType.ALERT_UPDATED, alert_event(row, audit))
            return alert_view(row)

    async def acknowledge_alert(self, alert_id: int, *, by: Actor) -> views.AlertView:
        """Acknowledge. A dosing hold is the clinician's to acknowledge (DESIGN.md
        "Thresholds"); acknowledging says it was seen, it does not lift it (the dosing
        gate). A latched alert whose condition cleared is resolved with it."""
        async with self._reads() as session:
            row = await get(session, models.Alert, alert_id, "alert")
            if row.kind == AlertKind.DOSING_HOLD.value and not by.is_clinician:
                raise NotAllowed("a dosing hold is acknowledged by a clinician")

        def step(alert: Alert, now: datetime, policy: AlarmPolicy) -> Steps:
            acknowledged = alert.acknowledge(by.username, now)
            settled = acknowledged[0].settle(now)
            return [acknowledged] if settled is None else [acknowledged, settled]

        return await self._alert_transition(alert_id, step)

    async def snooze_alert(self, alert_id: int, minutes: float, *, by: Actor) -> views.AlertView:
        """Snooze for a while; snoozes of one alert add up to the protocol's cap."""
        return await self._alert_transition(
            alert_id,
            lambda alert, now, policy: [
                alert.snooze(by.username, now, minutes, self._max_snooze, policy=policy)
            ],
        )

    async def resolve_alert(self, alert_id: int, note: str, *, by: Actor) -> views.AlertView:
        return await self._alert_transition(
            alert_id, lambda alert, now, policy: [alert.resolve(by.username, now, note)]
        )

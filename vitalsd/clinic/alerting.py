"""Alerting: what users do to alerts (acknowledge, snooze, resolve), through the pure
alert state machine (`vitalsd.alerts`), audited and announced as `alert_updated`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vitalsd import views
from vitalsd.alerts import Alert, AuditEntry
from vitalsd.auth import Actor
from vitalsd.domain import AlertKind
from vitalsd.errors import NotAllowed
from vitalsd.store import models
from vitalsd.store.events import EventType

from .lookups import get
from .rows import alert_of, alert_view, write_alert
from .rules import audit_alert
from .unit_of_work import UnitOfWork


class Alerting:
    """User transitions of alerts, each one cached transaction."""

    def __init__(
        self,
        uow: UnitOfWork,
        reads: async_sessionmaker[AsyncSession],
        max_snooze: timedelta,
    ) -> None:
        self._uow = uow
        self._reads = reads
        self._max_snooze = max_snooze

    async def _alert_transition(
        self, alert_id: int, step: Callable[[Alert, datetime], tuple[Alert, AuditEntry]]
    ) -> views.AlertView:
        # The writer keeps the open alerts of the sessions it remembers: the one changed
        # here is that same row (attached first), so the memory follows the change.
        async with self._uow.cached_transaction() as tx:
            await tx.attach_session_with_alert(alert_id)
            row = await get(tx.session, models.Alert, alert_id, "alert")
            before = alert_of(row)
            after, audit = step(before, tx.now)
            write_alert(row, after)
            await tx.session.flush()
            audit_alert(tx, row, audit)
            tx.emit(EventType.ALERT_UPDATED, alert_view(row).as_dict())
            return alert_view(row)

    async def acknowledge_alert(self, alert_id: int, *, by: Actor) -> views.AlertView:
        """Acknowledge. A dosing hold is the clinician's to acknowledge (DESIGN.md
        "Thresholds"): that is what lets the dose be recorded."""
        async with self._reads() as session:
            row = await get(session, models.Alert, alert_id, "alert")
            if row.kind == AlertKind.DOSING_HOLD.value and not by.is_clinician:
                raise NotAllowed("a dosing hold is acknowledged by a clinician")
        return await self._alert_transition(
            alert_id, lambda alert, now: alert.acknowledge(by.username, now)
        )

    async def snooze_alert(self, alert_id: int, minutes: float, *, by: Actor) -> views.AlertView:
        return await self._alert_transition(
            alert_id, lambda alert, now: alert.snooze(by.username, now, minutes, self._max_snooze)
        )

    async def resolve_alert(self, alert_id: int, note: str, *, by: Actor) -> views.AlertView:
        return await self._alert_transition(
            alert_id, lambda alert, now: alert.resolve(by.username, now, note)
        )

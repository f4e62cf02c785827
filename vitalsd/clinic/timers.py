"""Timers: what time alone changes (checks falling due or overdue, phases, staleness,
snooze ends, escalations), applied at each deadline by one sleeping loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from vitalsd.alerts import AlarmPolicy
from vitalsd.domain import AlertState
from vitalsd.evaluation import StaleWatch
from vitalsd.store import models
from vitalsd.store.events import EventType

from .cuff_silence import apply_cuff_silence, cuffs_heard, next_silence_check
from .rows import alert_of, write_alert
from .rules import alarm_policy_of, alert_event, audit_alert, reevaluate
from .session_state import SessionLoader
from .unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

# The timer wakes this much after a deadline, so the deadline has surely passed.
TIMER_SLACK = timedelta(milliseconds=20)


class Timers:
    """Applies due transitions; knows the next deadline; sleeps until it."""

    def __init__(
        self,
        uow: UnitOfWork,
        reads: async_sessionmaker[AsyncSession],
        loader: SessionLoader,
        now: Callable[[], datetime],
        *,
        stale_after: timedelta,
        escalation_delay: timedelta,
        default_policy: AlarmPolicy,
        cuff_silent_after: timedelta | None = None,
    ) -> None:
        """`cuff_silent_after`: a chair-in-session's cuff not heard from this long raises
        `cuff_offline` (None: the rule is off)."""
        self._default_policy = default_policy
        self._cuff_silent_after = cuff_silent_after
        self._uow = uow
        self._reads = reads
        self._loader = loader
        self._now = now
        self._stale_after = stale_after
        self._escalation_delay = escalation_delay

    async def apply_time(self) -> None:
        """Apply what time has made due: checks due or overdue, phases, staleness, snooze
        ends and escalations. The timer loop calls it at each deadline."""
        async with self._uow.cached_transaction(wake=False) as tx:
            # The kept states of closed sessions go: their alerts are loaded below as
            # rows of their own (only kept states are attached first).
            tx.forget_closed_sessions()
            open_ids = list(
                await tx.session.scalars(
                    select(models.Session.id).where(
                        models.Session.closed_at.is_(None), self._of_site(models.Session.chair_id)
                    )
                )
            )
            for session_id in open_ids:
                await reevaluate(tx, await tx.state_for(session_id), self._stale_after)
            if self._cuff_silent_after is not None:
                for cuff in await cuffs_heard(tx.session, open_ids):
                    state = await tx.state_for(cuff.session_id)
                    await apply_cuff_silence(tx, state, cuff, self._cuff_silent_after)
            open_rows = list(
                await tx.session.scalars(
                    select(models.Alert).where(
                        models.Alert.state != AlertState.RESOLVED.value, self._alert_of_site()
                    )
                )
            )
            for alert_row in open_rows:
                policy = await alarm_policy_of(
                    tx.session, self._loader, alert_row, self._default_policy
                )
                for after, audit in alert_of(alert_row).due_transitions(
                    tx.now, self._escalation_delay, policy
                ):
                    write_alert(alert_row, after)
                    await tx.session.flush()
                    audit_alert(tx, alert_row, audit)
                    tx.emit(EventType.ALERT_UPDATED, alert_event(alert_row, audit))

    async def next_deadline(self) -> datetime | None:
        """The next moment time alone changes something: a window edge, a phase change,
        a stale deadline, a snooze end or an escalation."""
        now = self._now()
        deadlines: list[datetime] = []
        async with self._reads() as session:
            open_rows = list(
                await session.scalars(
                    select(models.Session).where(
                        models.Session.closed_at.is_(None), self._of_site(models.Session.chair_id)
                    )
                )
            )
            for state in await self._loader.load_many(session, open_rows):
                edge = state.schedule.next_change(state.facts, now)
                if edge is not None:
                    deadlines.append(edge)
                stale = StaleWatch.of(state.facts, self._stale_after).deadline
                if stale is not None and stale > now:
                    deadlines.append(stale)
            open_conditions: dict[int, set[str]] = {}
            for alert_row in await session.scalars(
                select(models.Alert).where(
                    models.Alert.state != AlertState.RESOLVED.value, self._alert_of_site()
                )
            ):
                policy = await alarm_policy_of(
                    session, self._loader, alert_row, self._default_policy
                )
                due = alert_of(alert_row).next_deadline(self._escalation_delay, policy)
                if due is not None:
                    deadlines.append(due)
                if alert_row.session_id is not None:
                    open_conditions.setdefault(alert_row.session_id, set()).add(alert_row.condition)
            if self._cuff_silent_after is not None:
                for cuff in await cuffs_heard(session, [r.id for r in open_rows]):
                    check = next_silence_check(
                        cuff,
                        open_conditions.get(cuff.session_id, set()),
                        now,
                        self._cuff_silent_after,
                    )
                    if check is not None:
                        deadlines.append(check)
        return min(deadlines, default=None)

    def _of_site(
        self, chair_id: InstrumentedAttribute[int] | InstrumentedAttribute[int | None]
    ) -> ColumnElement[bool]:
        """Only this daemon's site's chairs: each site's timers run on its own daemons,
        numbered in its own stream (issue #16)."""
        return chair_id.in_(select(models.Chair.id).where(models.Chair.site == self._uow.site))

    def _alert_of_site(self) -> ColumnElement[bool]:
        """The alerts this site raised (a session's alert is its chair's site's, as
        every write about a chair is; a ward-level alert, e.g. `nobody_watching`, the
        site of the daemon that raised it): exactly one site's timers re-notify and
        escalate each alert."""
        return models.Alert.site == self._uow.site

    def wake(self) -> None:
        """Make the timer loop recompute its deadline now."""
        self._uow.changed.set()

    async def run_timers(self) -> None:
        """Sleep until the next deadline (or a change), apply what is due, repeat. Not a
        once-a-second poll: with nothing scheduled it sleeps until something changes."""
        while True:
            self._uow.changed.clear()
            try:
                await self.apply_time()
                deadline = await self.next_deadline()
            except Exception:
                log.exception("timer loop: applying due transitions failed; retrying in 5 s")
                deadline = self._now() + timedelta(seconds=5)
            timeout = (
                None
                if deadline is None
                else max(0.0, (deadline - self._now() + TIMER_SLACK).total_seconds())
            )
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation (a timer leader stepping down) that arrives as the wake does.
            try:
                async with asyncio.timeout(timeout):
                    await self._uow.changed.wait()
            except TimeoutError:
                pass

"""Technical alarms about the alarm system itself (issue #15): a notification channel
failing, and sessions open with no dashboard watching. Neither belongs to a session or a
chair: the alert is the ward's. The decisions are `vitalsd.technical`'s; the notifier
(`vitalsd.notify`) and the dashboard watch (`vitalsd.dashboard_watch`) call in here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vitalsd.alerts import reconcile
from vitalsd.domain import AlertState, require_utc
from vitalsd.store import models
from vitalsd.technical import (
    NOBODY_WATCHING_CONDITION,
    channel_failing,
    channel_failing_condition,
    nobody_watching,
)
from vitalsd.thresholds import Finding

from .rows import alert_of, text
from .rules import apply_alert_changes
from .unit_of_work import UnitOfWork


class TechnicalAlarms:
    """Raises and clears the ward's technical alerts; each call is idempotent (one open
    alert per condition, a repeated raise or clear changes nothing)."""

    def __init__(self, uow: UnitOfWork, reads: async_sessionmaker[AsyncSession]) -> None:
        self._uow = uow
        self._reads = reads

    async def channel_failing(self, channel: str, reason: str) -> None:
        """A notification channel failed repeatedly (or a push subscription is gone): one
        medium `channel_failing` alert per channel, kept while it fails."""
        name = str(text(channel, "channel", required=True))
        await self._raise(channel_failing(name, str(text(reason, "reason", required=True))))

    async def channel_recovered(self, channel: str) -> None:
        """The channel delivered again: its `channel_failing` alert resolves."""
        name = str(text(channel, "channel", required=True))
        await self._clear(channel_failing_condition(name), "the channel delivered again")

    async def nobody_watching(self, open_sessions: int, since: datetime) -> None:
        """Sessions open and no dashboard connected since `since`: one high
        `nobody_watching` alert (the notifier sends it off the tablet)."""
        await self._raise(nobody_watching(open_sessions, require_utc(since, "since")))

    async def somebody_watching(self) -> None:
        """A dashboard connected (or no session is open any more): the alert resolves.
        It does not latch: its whole point, a screen showing the ward, is met again."""
        await self._clear(NOBODY_WATCHING_CONDITION, "a dashboard is connected")

    async def open_session_count(self) -> int:
        """How many sessions are open (what the dashboard watch weighs)."""
        async with self._reads() as session:
            count = await session.scalar(
                select(func.count(models.Session.id)).where(models.Session.closed_at.is_(None))
            )
            return int(count or 0)

    async def _raise(self, finding: Finding) -> None:
        async with self._uow.transaction() as tx:
            rows = await _open_ward_alerts(tx.session, finding.condition)
            changes = reconcile([alert_of(r) for r in rows.values()], [finding], [], tx.now)
            await apply_alert_changes(tx, changes, rows)

    async def _clear(self, condition: str, note: str) -> None:
        # Looked up first on the readers: the usual answer (nothing open) costs no write.
        async with self._reads() as session:
            if not await _open_ward_alerts(session, condition):
                return
        async with self._uow.transaction() as tx:
            rows = await _open_ward_alerts(tx.session, condition)
            changes = reconcile(
                [alert_of(r) for r in rows.values()], [], [condition], tx.now, clear_note=note
            )
            await apply_alert_changes(tx, changes, rows)


async def _open_ward_alerts(session: AsyncSession, condition: str) -> dict[str, models.Alert]:
    """The open alert of `condition` that belongs to no session, by condition."""
    rows = await session.scalars(
        select(models.Alert).where(
            models.Alert.session_id.is_(None),
            models.Alert.condition == condition,
            models.Alert.state != AlertState.RESOLVED.value,
        )
    )
    return {r.condition: r for r in rows}

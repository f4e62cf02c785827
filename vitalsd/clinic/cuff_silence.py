"""The shell of the silent-cuff rule (issue #15: "a cuff of a chair in session not heard
from for N minutes"): what the database knows of each chair-in-session's cuff, fed to
`vitalsd.technical`, and the `cuff_offline` alert it raises or clears. The timers run
it with the other rules time alone changes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from vitalsd.alerts import reconcile
from vitalsd.domain import ConnectionState, ReadingSource
from vitalsd.store import models
from vitalsd.technical import (
    CUFF_OFFLINE_CONDITIONS,
    CUFF_SILENT_CONDITION,
    cuff_silent,
    is_silent,
    silence_began,
    silence_deadline,
)

from .rows import alert_of
from .rules import apply_alert_changes
from .session_state import SessionState
from .unit_of_work import Tx

# While a silent cuff's alert is open, look again this often: a sign of life (an
# advertisement, written at most every 30 s: equipment.DEVICE_SEEN_WRITE_INTERVAL) stores
# no event, so it does not wake the timers by itself.
SILENCE_RECHECK: Final = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class CuffHeard:
    """The cuff of one chair in session, as last heard from."""

    session_id: int
    session_started: datetime
    chair_id: int
    chair: str
    cuff: str | None
    last_heard: datetime | None
    connected: bool

    def silent(self, now: datetime, after: timedelta) -> bool:
        if self.cuff is None or self.connected:  # no cuff to hear; a live link is heard
            return False
        return is_silent(self.last_heard, self.session_started, now, after)


async def cuffs_heard(session: AsyncSession, open_ids: Sequence[int]) -> list[CuffHeard]:
    """Each open session's chair's cuff with its last sign of life: the device row's
    `last_seen_at` (advertisements, connections, status) or the session's latest cuff
    reading, whichever is later. Two queries, however many chairs."""
    if not open_ids:
        return []
    rows = await session.execute(
        select(
            models.Session.id,
            models.Session.started_at,
            models.Chair.id,
            models.Chair.name,
            models.Chair.cuff_address,
            models.Device.last_seen_at,
            models.Device.connection_state,
        )
        .join(models.Chair, models.Chair.id == models.Session.chair_id)
        .outerjoin(models.Device, models.Device.address == models.Chair.cuff_address)
        .where(models.Session.id.in_(open_ids))
        .order_by(models.Session.id)
    )
    latest = await session.execute(
        select(models.Reading.session_id, func.max(models.Reading.received_at))
        .where(
            models.Reading.session_id.in_(open_ids),
            models.Reading.source == ReadingSource.CUFF.value,
        )
        .group_by(models.Reading.session_id)
    )
    latest_reading = {session_id: received for session_id, received in latest}
    heard: list[CuffHeard] = []
    for session_id, started, chair_id, chair, cuff, seen, connection in rows:
        signs = [t for t in (seen, latest_reading.get(session_id)) if t is not None]
        heard.append(
            CuffHeard(
                session_id,
                started,
                chair_id,
                chair,
                cuff,
                max(signs, default=None),
                connection == ConnectionState.CONNECTED.value,
            )
        )
    return heard


async def apply_cuff_silence(
    tx: Tx, state: SessionState, cuff: CuffHeard, after: timedelta
) -> None:
    """Raise the session's `cuff_offline` alert for a silent cuff (unless one is open,
    e.g. the cuff advertises but cannot connect), or clear the silent one when heard."""
    rows = state.alert_rows
    if cuff.silent(tx.now, after):
        if CUFF_OFFLINE_CONDITIONS & rows.keys():
            return
        assert cuff.cuff is not None  # silent() says so
        since = silence_began(cuff.last_heard, cuff.session_started)
        finding = cuff_silent(cuff.cuff, cuff.chair, since, after, state.facts.zone)
        changes = reconcile(
            [alert_of(r) for r in rows.values()],
            [finding],
            [],
            tx.now,
            session_id=cuff.session_id,
            chair_id=cuff.chair_id,
        )
    elif CUFF_SILENT_CONDITION in rows:
        changes = reconcile(
            [alert_of(r) for r in rows.values()],
            [],
            [CUFF_SILENT_CONDITION],
            tx.now,
            clear_note="the cuff was heard from again",
        )
    else:
        return
    await apply_alert_changes(tx, changes, rows)


def next_silence_check(
    cuff: CuffHeard, open_conditions: set[str], now: datetime, after: timedelta
) -> datetime | None:
    """When the rule must look at this cuff again: at its silence deadline, or every
    `SILENCE_RECHECK` while its silent alert is open; None when nothing can change by
    time alone (no cuff, a live link, or the unreachable alert standing)."""
    if CUFF_SILENT_CONDITION in open_conditions:
        return now + SILENCE_RECHECK
    if cuff.cuff is None or cuff.connected or CUFF_OFFLINE_CONDITIONS & open_conditions:
        return None
    deadline = silence_deadline(cuff.last_heard, cuff.session_started, after)
    return deadline if deadline > now else now

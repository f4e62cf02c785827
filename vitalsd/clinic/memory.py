"""The writer's identity map: what it remembers of the database between its
transactions (each open session's state; cuff -> chair -> sessions; devices), and the
rules that keep it true.

It is valid while `known_seq` is the event counter's value (no other process wrote since
the writer's last commit). When the counter moved, the unit of work forgets what the
other processes' events name (`forget_changed`; all of it when it cannot tell); it drops
all of it when a transaction fails and at the start of every transaction not declared
cached; a
transaction reaches it only through its `Tx` (session states, loaded afresh in an
uncached one) or `CachedTx` (all of it), so only a cached transaction, which keeps what
it changes up to date, can rely on what an earlier one left.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from vitalsd.domain import AuditAction
from vitalsd.errors import Conflict
from vitalsd.store import models
from vitalsd.store.events import EventType
from vitalsd.store.models import DEFAULT_SITE

from .lookups import get
from .session_state import SessionLoader, SessionState

EVENTS = cast(Table, models.EventRow.__table__)
# Another daemon's events that change one session's state.
SESSION_SCOPED_EVENTS = frozenset(
    t.value
    for t in (
        EventType.READING,
        EventType.MEASUREMENT_FAILED,
        EventType.ALERT,
        EventType.ALERT_UPDATED,
        EventType.CHECK_DUE,
        EventType.CHECK_OVERDUE,
    )
)
# More events than this since the writer's last write: forget everything instead.
FORGET_CHANGED_LIMIT = 1000
# How long after another process's write ingest stops writing first (seconds).
OTHERS_WRITING_S = 2.0


@dataclass(frozen=True)
class SessionSpan:
    id: int
    started_at: datetime
    closed_at: datetime | None

    def covers(self, at: datetime) -> bool:
        return self.started_at <= at and (self.closed_at is None or self.closed_at >= at)


@dataclass(frozen=True)
class ChairSessions:
    """A chair's open session and every session of the chair started at or after it
    (closed ones only when a session was charted with a start in the past): enough to
    find the session of any reading measured after the open session's start."""

    open_started_at: datetime
    spans: tuple[SessionSpan, ...]

    def session_at(self, at: datetime) -> int | None:
        """The latest-started session covering `at`, as `session_for_cuff`'s query
        picks it; only for `at` at or after the open session's start."""
        covering = [s for s in self.spans if s.covers(at)]
        return max(covering, key=lambda s: s.started_at).id if covering else None

    @property
    def open_id(self) -> int | None:
        """The chair's open session (the latest-started one not closed)."""
        opened = [s for s in self.spans if s.closed_at is None]
        return max(opened, key=lambda s: s.started_at).id if opened else None


@dataclass
class KnownDevice:
    id: int
    last_seen_at: datetime | None


class WriterMemory:
    """What the writer remembers; every method that takes a database session works in
    the caller's write transaction, whose `attached` set it keeps."""

    def __init__(self, loader: SessionLoader, site: str = DEFAULT_SITE) -> None:
        self.loader = loader
        # Only this site's chairs (and their sessions) are remembered: every write about
        # them is numbered on this site's counter, so `known_seq` tells when another
        # process changed them (issue #16).
        self.site = site
        self.known_seq: int | None = None
        self._states: dict[int, SessionState] = {}
        self._chair_of_cuff: dict[str, int | None] = {}
        # Since when each cuff has been on its chair (its latest assignment's audit time):
        # a reading measured before then belongs to the chair it was on then.
        self._assigned_since: dict[str, datetime | None] = {}
        self._chair_sessions: dict[int, ChairSessions | None] = {}
        self._devices: dict[str, KnownDevice] = {}
        # True once all of it was loaded at once (`remember_clinic`): what is not
        # remembered then does not exist (a cuff without a chair, a chair without an
        # open session, a cuff never seen).
        self.remembers_clinic = False
        # Several daemons on one PostgreSQL (#16): another process wrote since this one
        # started (never load the whole clinic under the group-wide counter lock again),
        # and when we last saw it (time.monotonic()).
        self.others_write = False
        self._others_wrote_at = -math.inf

    def others_writing(self) -> bool:
        """Another process wrote between two of our writes lately: an optimistic ingest
        would most likely fail and be done again (dropping its session's memory), so
        take the counter lock first instead."""
        return time.monotonic() - self._others_wrote_at < OTHERS_WRITING_S

    async def forget_changed(self, session: AsyncSession, after: int, upto: int) -> None:
        """Other daemons committed events `after`..`upto` since this writer's last write:
        forget only what they touched (their sessions, chairs, cuffs), read from their
        events in one query, instead of the whole memory; anything it cannot place, or
        too much at once, and it forgets everything. What is forgotten is loaded again
        when needed, one session or chair at a time (never the whole clinic under the
        group-wide counter lock)."""
        self.others_write = True
        self._others_wrote_at = time.monotonic()
        if upto - after > FORGET_CHANGED_LIMIT:
            self.forget_all()
            return
        rows = await session.execute(
            select(EVENTS.c.type, EVENTS.c.data).where(
                EVENTS.c.site == self.site, EVENTS.c.seq > after, EVENTS.c.seq <= upto
            )
        )
        for kind, data in rows:
            if not self._forget_touched(kind, data or {}):
                self.forget_all()
                return
        # What is not remembered now may exist: look it up (`session_for_cuff`).
        self.remembers_clinic = False

    def _forget_touched(self, kind: str, data: Mapping[str, Any]) -> bool:
        """Forget what one event of another daemon says changed; False: unknown."""
        if kind in SESSION_SCOPED_EVENTS:
            self._states.pop(data.get("session_id") or 0, None)
            return True
        if kind == EventType.SESSION_UPDATED.value:
            self._states.pop(data.get("id") or 0, None)
            self._chair_sessions.pop(data.get("chair_id") or 0, None)
            return True
        if kind == EventType.DEVICE_STATUS.value:
            address = str(data.get("address") or "").upper()
            self._chair_of_cuff.pop(address, None)
            self._assigned_since.pop(address, None)
            self._devices.pop(address, None)
            chair_id = data.get("chair_id")
            for cuff, held_by in list(self._chair_of_cuff.items()):
                if chair_id is not None and held_by == chair_id:
                    del self._chair_of_cuff[cuff]  # the chair has another cuff now
            return True
        return False

    def forget_sessions(self, session_ids: Iterable[int]) -> None:
        for session_id in session_ids:
            self._states.pop(session_id, None)

    def forget_all(self) -> None:
        self.remembers_clinic = False
        self._states.clear()
        self._chair_of_cuff.clear()
        self._assigned_since.clear()
        self._chair_sessions.clear()
        self._devices.clear()

    # -- session states ------------------------------------------------------------------

    async def state_for(
        self, session: AsyncSession, attached: set[int], session_id: int
    ) -> SessionState:
        """The writer's state of a session, attached to the transaction: kept from an
        earlier one, or loaded (and kept). Call it before any other query in the
        transaction that could load the session's rows, so that they are the kept ones."""
        state = self._states.get(session_id)
        if state is None:
            row = await get(session, models.Session, session_id, "session")
            await self.require_site(session, row.chair_id)
            state = await self.loader.load(session, row, with_alerts=True)
            self._states[session_id] = state
        elif session_id not in attached:
            session.add(state.row)
            session.add_all(state.check_rows.values())
            session.add_all(state.alert_rows.values())
        attached.add(session_id)
        return state

    async def _is_ours(self, session: AsyncSession, chair_id: int) -> bool:
        site = await session.scalar(select(models.Chair.site).where(models.Chair.id == chair_id))
        return site is None or site == self.site

    async def require_site(self, session: AsyncSession, chair_id: int) -> None:
        """Refuse a write about another site's chair (its daemon writes for it, in its
        site's stream; issue #16): what this writer remembers stays this site's."""
        site = await session.scalar(select(models.Chair.site).where(models.Chair.id == chair_id))
        if site is not None and site != self.site:
            raise Conflict(
                f"chair {chair_id} belongs to site {site!r}; this daemon writes for site "
                f"{self.site!r}: ask a daemon of site {site!r}"
            )

    async def reloaded_state(
        self, session: AsyncSession, attached: set[int], row: models.Session
    ) -> SessionState:
        """The state of `row` read again, after a change the kept state does not follow
        (a dose, a waiver, a close): rows already in the transaction are the same objects."""
        self._states.pop(row.id, None)
        return await self.state_for(session, attached, row.id)

    async def cached_state(
        self, session: AsyncSession, attached: set[int], session_id: int | None
    ) -> SessionState | None:
        """The writer's state of the session if it keeps one (attached)."""
        if session_id is None or session_id not in self._states:
            return None
        return await self.state_for(session, attached, session_id)

    def session_with_alert(self, alert_id: int) -> int | None:
        """The remembered session whose open alerts include `alert_id`."""
        return next(
            (
                session_id
                for session_id, state in self._states.items()
                if any(a.id == alert_id for a in state.alert_rows.values())
            ),
            None,
        )

    def forget_closed_sessions(self) -> None:
        for session_id in [i for i, s in self._states.items() if s.row.closed_at]:
            del self._states[session_id]

    # -- the whole clinic ----------------------------------------------------------------

    async def remember_clinic(self, session: AsyncSession, attached: set[int]) -> None:
        """Load at once what the writer needs of the whole clinic, in a fixed number of
        queries (not a few per session on each one's first reading): every cuff's chair,
        every open session's state and its chair's sessions, every device."""
        for session_id in list(self._states):
            await self.state_for(session, attached, session_id)  # attached first
        chairs = await session.execute(
            select(models.Chair.cuff_address, models.Chair.id).where(
                models.Chair.cuff_address.is_not(None), models.Chair.site == self.site
            )
        )
        for cuff, chair_id in chairs:
            if cuff is not None:
                self._chair_of_cuff.setdefault(cuff, chair_id)
        assigned = await session.execute(
            select(models.AuditRecord.to_state, func.max(models.AuditRecord.at))
            .where(
                models.AuditRecord.entity == "chair",
                models.AuditRecord.action == AuditAction.CUFF_ASSIGNED.value,
                models.AuditRecord.to_state.is_not(None),
            )
            .group_by(models.AuditRecord.to_state)
        )
        for cuff, since in assigned:
            if cuff in self._chair_of_cuff:
                self._assigned_since.setdefault(cuff, since)
        open_rows = list(
            await session.scalars(
                select(models.Session).where(
                    models.Session.closed_at.is_(None),
                    models.Session.id.not_in(self._states),
                    models.Session.chair_id.in_(
                        select(models.Chair.id).where(models.Chair.site == self.site)
                    ),
                )
            )
        )
        for state in await self.loader.load_many(session, open_rows, with_alerts=True):
            self._states[state.row.id] = state
            attached.add(state.row.id)
        opened = {s.row.chair_id: s.row for s in self._states.values() if s.row.closed_at is None}
        later: dict[int, list[SessionSpan]] = {chair_id: [] for chair_id in opened}
        if opened:
            closed = await session.execute(
                select(
                    models.Session.chair_id,
                    models.Session.id,
                    models.Session.started_at,
                    models.Session.closed_at,
                ).where(
                    models.Session.chair_id.in_(opened),
                    models.Session.closed_at.is_not(None),
                    models.Session.started_at >= min(r.started_at for r in opened.values()),
                )
            )
            for chair_id, session_id, started_at, closed_at in closed:
                if started_at >= opened[chair_id].started_at:
                    later[chair_id].append(SessionSpan(session_id, started_at, closed_at))
        for chair_id, row in opened.items():
            spans = (SessionSpan(row.id, row.started_at, None), *later[chair_id])
            self._chair_sessions[chair_id] = ChairSessions(row.started_at, spans)
        devices = await session.execute(
            select(models.Device.address, models.Device.id, models.Device.last_seen_at)
        )
        for address, device_id, last_seen_at in devices:
            self._devices.setdefault(address, KnownDevice(device_id, last_seen_at))
        self.remembers_clinic = True

    # -- cuffs and devices ---------------------------------------------------------------

    def writes_first(self, cuff: str, measured: datetime) -> bool:
        """Whether the writer knows all it needs to ingest a reading of `cuff` without a
        read before its INSERT (an optimistic transaction)."""
        known_device = self._devices.get(cuff)
        if self.known_seq is None or known_device is None or known_device.last_seen_at is None:
            return False
        if cuff not in self._chair_of_cuff and not self.remembers_clinic:
            return False
        chair_id = self._chair_of_cuff.get(cuff)
        if chair_id is None:
            return True
        since = self._assigned_since.get(cuff)
        if since is not None and measured < since:
            return False
        sessions = self._chair_sessions.get(chair_id)
        if sessions is None or measured < sessions.open_started_at:
            return False
        session_id = sessions.session_at(measured)
        return session_id is None or session_id in self._states

    async def session_for_cuff(
        self, session: AsyncSession, cuff: str, measured: datetime
    ) -> int | None:
        """The id of the session a reading of `cuff` measured at `measured` belongs to:
        the latest-started session of the cuff's chair covering that time. Remembered
        per cuff and chair (every write that assigns a cuff or starts or closes a
        session is an uncached transaction, which drops that memory)."""
        chair_id = await self.chair_of_cuff(session, cuff)
        since = self._assigned_since.get(cuff)
        if since is not None and measured < since:
            # Measured before the cuff came to its chair (DESIGN.md "Cuffs and chairs").
            chair_id = await _chair_of_cuff_at(session, cuff, measured)
            if chair_id is not None and not await self._is_ours(session, chair_id):
                chair_id = None  # another site's chair then: not this writer's to fill
        elif chair_id is not None:
            known = await self._sessions_of_chair(session, chair_id)
            if known is not None and measured >= known.open_started_at:
                return known.session_at(measured)
        if chair_id is None:
            return None
        # Before the open session (a late record), or no session open: ask the database.
        row = models.Session
        return await session.scalar(
            select(row.id)
            .where(
                row.chair_id == chair_id,
                row.started_at <= measured,
                or_(row.closed_at.is_(None), row.closed_at >= measured),
            )
            .order_by(row.started_at.desc())
            .limit(1)
        )

    async def chair_of_cuff(self, session: AsyncSession, cuff: str) -> int | None:
        """The chair the cuff is assigned to now (remembered, as `session_for_cuff`)."""
        if cuff in self._chair_of_cuff or self.remembers_clinic:
            return self._chair_of_cuff.get(cuff)
        chair_id = await session.scalar(
            select(models.Chair.id).where(
                models.Chair.cuff_address == cuff, models.Chair.site == self.site
            )
        )
        self._chair_of_cuff[cuff] = chair_id
        if chair_id is not None:
            self._assigned_since[cuff] = await session.scalar(
                select(func.max(models.AuditRecord.at)).where(
                    models.AuditRecord.entity == "chair",
                    models.AuditRecord.entity_id == chair_id,
                    models.AuditRecord.action == AuditAction.CUFF_ASSIGNED.value,
                    models.AuditRecord.to_state == cuff,
                )
            )
        return chair_id

    async def open_session_for_cuff(self, session: AsyncSession, cuff: str) -> int | None:
        """The open session of the cuff's chair, if any: the only session a reading whose
        time cannot be trusted may join (DESIGN.md "Time")."""
        chair_id = await self.chair_of_cuff(session, cuff)
        if chair_id is None:
            return None
        known = await self._sessions_of_chair(session, chair_id)
        return None if known is None else known.open_id

    async def _sessions_of_chair(
        self, session: AsyncSession, chair_id: int
    ) -> ChairSessions | None:
        if chair_id in self._chair_sessions or self.remembers_clinic:
            return self._chair_sessions.get(chair_id)
        known = await _load_chair_sessions(session, chair_id)
        self._chair_sessions[chair_id] = known
        return known

    def device(self, address: str) -> KnownDevice | None:
        return self._devices.get(address)

    def remember_device(self, address: str, device_id: int, last_seen_at: datetime | None) -> None:
        self._devices[address] = KnownDevice(device_id, last_seen_at)


async def _chair_of_cuff_at(session: AsyncSession, cuff: str, at: datetime) -> int | None:
    """The chair `cuff` was on at `at`, from the audit trail of assignments (the latest
    assignment or unassignment concerning the cuff at or before `at`); None: none."""
    audit = models.AuditRecord
    last = (
        await session.execute(
            select(audit.action, audit.entity_id, audit.to_state)
            .where(
                audit.entity == "chair",
                audit.action.in_(
                    (AuditAction.CUFF_ASSIGNED.value, AuditAction.CUFF_UNASSIGNED.value)
                ),
                or_(audit.to_state == cuff, audit.from_state == cuff, audit.note == cuff),
                audit.at <= at,
            )
            .order_by(audit.at.desc(), audit.id.desc())
            .limit(1)
        )
    ).first()
    if last is None:
        return None
    action, chair_id, to_state = last
    return chair_id if action == AuditAction.CUFF_ASSIGNED.value and to_state == cuff else None


async def _load_chair_sessions(session: AsyncSession, chair_id: int) -> ChairSessions | None:
    opened = (
        await session.execute(
            select(models.Session.started_at).where(
                models.Session.chair_id == chair_id, models.Session.closed_at.is_(None)
            )
        )
    ).first()
    if opened is None:
        return None
    spans = await session.execute(
        select(models.Session.id, models.Session.started_at, models.Session.closed_at).where(
            models.Session.chair_id == chair_id, models.Session.started_at >= opened[0]
        )
    )
    return ChairSessions(opened[0], tuple(SessionSpan(*span) for span in spans))

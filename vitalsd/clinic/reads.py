"""Reads: the read side on the readers' pool (never the writer's connection): lists
and lookups for the API, the snapshot a new stream client starts from, and one
consistent read transaction for the exports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from vitalsd import views
from vitalsd.accounts import Account
from vitalsd.domain import AlertKind, AlertState, CheckState, Priority, require_utc
from vitalsd.errors import InvalidInput
from vitalsd.exports.query import read_snapshot
from vitalsd.store import models
from vitalsd.store.engine import is_sqlite
from vitalsd.store.models import DEFAULT_SITE

from .lookups import get, user_row
from .rows import (
    account_of,
    alert_view,
    audit_view,
    check_view,
    device_view,
    dose_view,
    patient_view,
    reading_view,
    side_effect_view,
    user_view,
)
from .session_state import SessionLoader


class Reads:
    """What the API, the stream and the exports read; no writes."""

    def __init__(
        self,
        engine: AsyncEngine,
        reads: async_sessionmaker[AsyncSession],
        loader: SessionLoader,
        now: Callable[[], datetime],
        site: str = DEFAULT_SITE,
    ) -> None:
        self._engine = engine
        self._reads = reads
        self._loader = loader
        self._now = now
        self.site = site

    @asynccontextmanager
    async def read_snapshot(self) -> AsyncIterator[AsyncSession]:
        """One read-only transaction on the readers' pool that sees one consistent
        state (`vitalsd.exports.query.read_snapshot`): what the exports read."""
        async with read_snapshot(self._engine) as db:
            yield db

    async def get_patient(self, patient_id: int) -> views.PatientView:
        async with self._reads() as session:
            return patient_view(await get(session, models.Patient, patient_id, "patient"))

    async def list_patients(
        self, *, search: str | None = None, limit: int | None = None
    ) -> list[views.PatientView]:
        """Every patient, or those whose identifier or name holds `search` (any case;
        `%` and `_` are plain characters), by id."""
        async with self._reads() as session:
            query = select(models.Patient).order_by(models.Patient.id)
            wanted = (search or "").strip().lower()
            if wanted and is_sqlite(self._engine):
                # SQLite's lower() folds ASCII only ("Élodie" would miss "élodie"); one
                # clinic's patients fit in memory, so they are folded here instead.
                folded = wanted.casefold()
                found = [
                    patient_view(r)
                    for r in await session.scalars(query)
                    if folded in r.identifier.casefold() or folded in r.display_name.casefold()
                ]
                return found if limit is None else found[:limit]
            if wanted:
                query = query.where(
                    or_(
                        func.lower(models.Patient.identifier).contains(wanted, autoescape=True),
                        func.lower(models.Patient.display_name).contains(wanted, autoescape=True),
                    )
                )
            if limit is not None:
                query = query.limit(limit)
            return [patient_view(r) for r in await session.scalars(query)]

    async def list_chairs(self) -> list[views.ChairView]:
        async with self._reads() as session:
            chairs = list(await session.scalars(select(models.Chair).order_by(models.Chair.id)))
            open_sessions = {
                s.chair_id: s.id
                for s in await session.scalars(
                    select(models.Session).where(models.Session.closed_at.is_(None))
                )
            }
            return [
                views.ChairView(c.id, c.name, c.cuff_address, open_sessions.get(c.id), c.retired_at)
                for c in chairs
            ]

    async def get_user(self, username: str) -> views.UserView:
        async with self._reads() as session:
            return user_view(await user_row(session, username))

    async def get_account(self, username: str) -> Account:
        """The account sign-in checks (any case of the name); NotFound if none."""
        async with self._reads() as session:
            return account_of(await user_row(session, username))

    async def list_users(self) -> list[views.UserView]:
        async with self._reads() as session:
            return [
                user_view(r)
                for r in await session.scalars(select(models.User).order_by(models.User.id))
            ]

    async def get_session(self, session_id: int) -> views.SessionView:
        async with self._reads() as session:
            row = await get(session, models.Session, session_id, "session")
            state = await self._loader.load(session, row)
            return state.view(self._now())

    async def list_sessions(
        self,
        *,
        open_only: bool = False,
        patient_id: int | None = None,
        chair_id: int | None = None,
        limit: int = 200,
    ) -> list[views.SessionView]:
        async with self._reads() as session:
            query = select(models.Session).order_by(models.Session.id.desc()).limit(limit)
            if open_only:
                query = query.where(models.Session.closed_at.is_(None))
            if patient_id is not None:
                query = query.where(models.Session.patient_id == patient_id)
            if chair_id is not None:
                query = query.where(models.Session.chair_id == chair_id)
            now = self._now()
            rows = list(await session.scalars(query))
            return [s.view(now) for s in await self._loader.load_many(session, rows)]

    async def list_doses(self, session_id: int) -> list[views.DoseView]:
        async with self._reads() as session:
            await get(session, models.Session, session_id, "session")
            rows = await session.scalars(
                select(models.Dose)
                .where(models.Dose.session_id == session_id)
                .order_by(models.Dose.given_at)
            )
            return [dose_view(r) for r in rows]

    async def list_side_effects(self, session_id: int) -> list[views.SideEffectView]:
        async with self._reads() as session:
            rows = await session.scalars(
                select(models.SideEffect)
                .where(models.SideEffect.session_id == session_id)
                .order_by(models.SideEffect.observed_at)
            )
            return [side_effect_view(r) for r in rows]

    async def list_readings(
        self,
        *,
        session_id: int | None = None,
        device_address: str | None = None,
        unattached: bool = False,
        since: datetime | None = None,
        limit: int = 1000,
    ) -> list[views.ReadingView]:
        async with self._reads() as session:
            query = select(models.Reading).order_by(models.Reading.measured_at, models.Reading.id)
            if session_id is not None:
                await get(session, models.Session, session_id, "session")
                query = query.where(models.Reading.session_id == session_id)
            if device_address is not None:
                query = query.where(models.Reading.device_address == device_address.upper())
            if unattached:
                query = query.where(models.Reading.session_id.is_(None))
            if since is not None:
                query = query.where(models.Reading.measured_at >= require_utc(since, "since"))
            rows = await session.scalars(query.limit(limit))
            return [reading_view(r) for r in rows]

    async def get_reading(self, reading_id: int) -> views.ReadingView:
        async with self._reads() as session:
            return reading_view(await get(session, models.Reading, reading_id, "reading"))

    async def list_devices(self) -> list[views.DeviceView]:
        async with self._reads() as session:
            chairs = {
                c.cuff_address: c.id
                for c in await session.scalars(select(models.Chair))
                if c.cuff_address
            }
            rows = await session.scalars(select(models.Device).order_by(models.Device.id))
            return [device_view(d, chairs.get(d.address)) for d in rows]

    async def get_alert(self, alert_id: int) -> views.AlertView:
        async with self._reads() as session:
            return alert_view(await get(session, models.Alert, alert_id, "alert"))

    async def list_alerts(
        self,
        *,
        session_id: int | None = None,
        state: AlertState | str | Sequence[AlertState | str] | None = None,
        kind: AlertKind | str | None = None,
        open_only: bool = False,
        limit: int = 500,
    ) -> list[views.AlertView]:
        async with self._reads() as session:
            query = select(models.Alert).order_by(models.Alert.id.desc()).limit(limit)
            if session_id is not None:
                query = query.where(models.Alert.session_id == session_id)
            if state is not None:
                states = [state] if isinstance(state, str) else list(state)
                try:
                    values = [AlertState(s).value for s in states]
                except ValueError as error:
                    raise InvalidInput(str(error)) from None
                query = query.where(models.Alert.state.in_(values))
            if open_only:
                query = query.where(models.Alert.state != AlertState.RESOLVED.value)
            if kind is not None:
                try:
                    query = query.where(models.Alert.kind == AlertKind(kind).value)
                except ValueError as error:
                    raise InvalidInput(str(error)) from None
            return [alert_view(r) for r in await session.scalars(query)]

    async def alert_history(
        self,
        *,
        chair_id: int | None = None,
        patient_id: int | None = None,
        priority: Priority | str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[views.AlertHistoryEntry]:
        """Alerts raised in [`since`, `until`), newest first, each with its audited
        transitions; `before_id` is the cursor (the last id a page held)."""
        try:
            wanted = Priority(priority).value if priority is not None else None
        except ValueError as error:
            raise InvalidInput(str(error)) from None
        since = require_utc(since, "from") if since is not None else None
        until = require_utc(until, "to") if until is not None else None
        if since is not None and until is not None and since >= until:
            raise InvalidInput("`from` must be before `to`")
        async with self._reads() as session:
            query = (
                select(models.Alert, models.Session.patient_id)
                .outerjoin(models.Session, models.Session.id == models.Alert.session_id)
                .order_by(models.Alert.id.desc())
                .limit(limit)
            )
            if chair_id is not None:
                query = query.where(models.Alert.chair_id == chair_id)
            if patient_id is not None:
                query = query.where(models.Session.patient_id == patient_id)
            if wanted is not None:
                query = query.where(models.Alert.priority == wanted)
            if since is not None:
                query = query.where(models.Alert.raised_at >= since)
            if until is not None:
                query = query.where(models.Alert.raised_at < until)
            if before_id is not None:
                query = query.where(models.Alert.id < before_id)
            found = (await session.execute(query)).all()
            ids = [row.id for row, _ in found]
            transitions: dict[int, list[views.AuditView]] = {i: [] for i in ids}
            if ids:
                audit = await session.scalars(
                    select(models.AuditRecord)
                    .where(models.AuditRecord.entity == "alert")
                    .where(models.AuditRecord.entity_id.in_(ids))
                    .order_by(models.AuditRecord.id)
                )
                for record in audit:
                    transitions[record.entity_id].append(audit_view(record))
            return [
                views.AlertHistoryEntry(alert_view(row), patient, tuple(transitions[row.id]))
                for row, patient in found
            ]

    async def list_audit(
        self,
        *,
        entity: str | None = None,
        entity_id: int | None = None,
        session_id: int | None = None,
        limit: int = 1000,
        after_id: int | None = None,
    ) -> list[views.AuditView]:
        """`after_id`: the cursor, the last id a page held."""
        async with self._reads() as session:
            query = select(models.AuditRecord).order_by(models.AuditRecord.id).limit(limit)
            if after_id is not None:
                query = query.where(models.AuditRecord.id > after_id)
            if entity is not None:
                query = query.where(models.AuditRecord.entity == entity)
            if entity_id is not None:
                query = query.where(models.AuditRecord.entity_id == entity_id)
            if session_id is not None:
                query = query.where(models.AuditRecord.session_id == session_id)
            return [audit_view(r) for r in await session.scalars(query)]

    async def list_checks(
        self, session_id: int, *, include_dropped: bool = False
    ) -> list[views.CheckView]:
        async with self._reads() as session:
            row = await get(session, models.Session, session_id, "session")
            query = select(models.Check).where(models.Check.session_id == session_id)
            if not include_dropped:
                query = query.where(models.Check.required.is_(True))
            checks = await session.scalars(
                query.order_by(models.Check.window_start.is_(None), models.Check.window_start)
            )
            return [check_view(c, row.chair_id) for c in checks]

    async def snapshot(self, site: str | None = None) -> views.Snapshot:
        """Chairs, open sessions, latest readings, open alerts, due and overdue checks: what
        a new WebSocket client shows first, consistent with the events up to `seq` of
        `site`'s stream (default: this daemon's site; issue #16). Only that site's chairs
        (and their sessions and alerts): no other site's change comes on its stream, so
        another site's chair would look current and never go stale."""
        async with self._reads() as session:
            if not is_sqlite(self._engine):
                # One consistent view across the queries (SQLite's read transaction is).
                await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            stream = site or self.site
            seq = await session.scalar(
                select(models.EventCounter.last_seq).where(models.EventCounter.site == stream)
            )
            site_chairs = select(models.Chair.id).where(models.Chair.site == stream)
            # A retired chair has left the ward (issue #14).
            chairs = list(
                await session.scalars(
                    select(models.Chair)
                    .where(models.Chair.site == stream, models.Chair.retired_at.is_(None))
                    .order_by(models.Chair.id)
                )
            )
            open_rows = list(
                await session.scalars(
                    select(models.Session).where(
                        models.Session.closed_at.is_(None),
                        models.Session.chair_id.in_(site_chairs),
                    )
                )
            )
            now = self._now()
            by_chair = {s.chair_id: s.id for s in open_rows}
            # A fixed number of queries, however many chairs (no query per session).
            states = await self._loader.load_many(session, open_rows)
            sessions = [state.view(now) for state in states]
            latest_ids = [
                max(valid, key=lambda r: (r.measured_at, r.id or 0)).id
                for state in states
                if (valid := [r for r in state.facts.readings if r.valid])
            ]
            latest = [
                reading_view(r)
                for r in await session.scalars(
                    select(models.Reading)
                    .where(models.Reading.id.in_(latest_ids or [-1]))
                    .order_by(models.Reading.session_id)
                )
            ]
            alerts = [
                alert_view(a)
                for a in await session.scalars(
                    select(models.Alert)
                    .where(
                        models.Alert.state != AlertState.RESOLVED.value,
                        or_(
                            models.Alert.chair_id.is_(None),
                            models.Alert.chair_id.in_(site_chairs),
                        ),
                    )
                    .order_by(models.Alert.id)
                )
            ]
            chair_of = {s.id: s.chair_id for s in open_rows}
            due = [
                check_view(c, chair_of.get(c.session_id))
                for c in await session.scalars(
                    select(models.Check)
                    .where(
                        models.Check.session_id.in_(list(chair_of) or [-1]),
                        models.Check.required.is_(True),
                        models.Check.state.in_([CheckState.DUE.value, CheckState.OVERDUE.value]),
                    )
                    .order_by(models.Check.window_start)
                )
            ]
            cuffs = {c.cuff_address: c.id for c in chairs if c.cuff_address}
            devices = [
                device_view(d, cuffs.get(d.address))
                for d in await session.scalars(select(models.Device).order_by(models.Device.id))
            ]
            return views.Snapshot(
                seq=int(seq or 0),
                chairs=tuple(
                    views.ChairView(c.id, c.name, c.cuff_address, by_chair.get(c.id))
                    for c in chairs
                ),
                sessions=tuple(sessions),
                latest_readings=tuple(latest),
                active_alerts=tuple(alerts),
                due_checks=tuple(due),
                devices=tuple(devices),
            )

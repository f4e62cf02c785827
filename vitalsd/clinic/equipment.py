"""Equipment: the cuffs' device rows as the Bluetooth side sees them (advertising,
connection, battery, device information), announced as `device_status`, and the
technical alarm of a cuff that advertises but cannot be connected."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vitalsd import views
from vitalsd.alerts import reconcile
from vitalsd.domain import ConnectionState, require_utc
from vitalsd.errors import InvalidInput
from vitalsd.store import models
from vitalsd.store.events import EventType
from vitalsd.technical import (
    CUFF_OFFLINE_CONDITIONS,
    CUFF_SILENT_CONDITION,
    cuff_offline,
)

from .lookups import ensure_device, open_alert_rows, open_session_of_chair
from .rows import alert_of, device_view, text
from .rules import apply_alert_changes
from .unit_of_work import UnitOfWork

DEVICE_SEEN_WRITE_INTERVAL = timedelta(seconds=30)
CONNECTION_STATES = frozenset(s.value for s in ConnectionState)


class Equipment:
    """Keeps the device rows (and the writer's memory of them) up to date."""

    def __init__(self, uow: UnitOfWork, now: Callable[[], datetime], zone: tzinfo = UTC) -> None:
        self._uow = uow
        self._now = now
        self._zone = zone  # the clinic's: the times in a technical alert's words

    async def update_device(
        self,
        address: str,
        *,
        at: datetime | None = None,
        name: str | None = None,
        manufacturer: str | None = None,
        model: str | None = None,
        serial: str | None = None,
        firmware: str | None = None,
        battery_percent: int | None = None,
        rssi: int | None = None,
        connection_state: str | None = None,
    ) -> views.DeviceView:
        """A cuff was seen or changed (advertisement, connection, battery, device
        information). Only given fields change; a change is a `device_status` event."""
        cuff = (text(address, "address", required=True) or "").upper()
        if connection_state is not None and connection_state not in CONNECTION_STATES:
            raise InvalidInput(
                f"connection_state must be one of {', '.join(sorted(CONNECTION_STATES))}"
            )
        if battery_percent is not None and not 0 <= battery_percent <= 100:
            raise InvalidInput(f"battery_percent is 0-100, got {battery_percent}")
        status = {
            "name": name,
            "manufacturer": manufacturer,
            "model": model,
            "serial": serial,
            "firmware": firmware,
            "battery_percent": battery_percent,
            "connection_state": connection_state,
        }
        seen_at = self._now() if at is None else require_utc(at, "at")
        # Advertisements arrive often: with no status change, write at most every
        # DEVICE_SEEN_WRITE_INTERVAL (no write transaction, no event in between). The
        # look is on the writer's connection, between its transactions: the cuff path
        # never waits for a connection the readers (API, snapshots) hold.
        async with self._uow.between_transactions() as session:
            known = await session.scalar(select(models.Device).where(models.Device.address == cuff))
            if (
                known is not None
                and all(v is None or getattr(known, k) == v for k, v in status.items())
                and known.last_seen_at is not None
                and timedelta(0) <= seen_at - known.last_seen_at < DEVICE_SEEN_WRITE_INTERVAL
            ):
                chair_id = await session.scalar(
                    select(models.Chair.id).where(models.Chair.cuff_address == cuff)
                )
                return device_view(known, chair_id)
        async with self._uow.cached_transaction() as tx:  # devices only: the caches hold
            seen = seen_at
            device = await ensure_device(tx.session, cuff, tx.now)
            changed = known is None  # a cuff seen for the first time
            for attribute, value in status.items():
                if value is not None and getattr(device, attribute) != value:
                    setattr(device, attribute, value)
                    changed = True
            if rssi is not None:
                device.rssi = rssi  # signal strength is shown, but is no status change
            if device.last_seen_at is None or seen > device.last_seen_at:
                device.last_seen_at = seen
            chair_id = await tx.session.scalar(
                select(models.Chair.id).where(models.Chair.cuff_address == cuff)
            )
            tx.remember_device(cuff, device.id, device.last_seen_at)
            view = device_view(device, chair_id)
            if changed:
                tx.emit(EventType.DEVICE_STATUS, view.as_dict())
            return view

    async def device_seen(
        self,
        address: str,
        *,
        at: datetime | None = None,
        name: str | None = None,
        rssi: int | None = None,
    ) -> views.DeviceView:
        return await self.update_device(address, at=at, name=name, rssi=rssi)

    async def cuff_unreachable(
        self,
        address: str,
        *,
        at: datetime,
        since: datetime,
        attempts: int,
        reason: str,
        advice: str,
    ) -> bool:
        """A cuff kept advertising but could not be connected (issue #18): a medium
        `cuff_offline` alert on its chair's open session. False: no chair in session
        has that cuff (the Bluetooth side keeps trying; the log says so). A silent
        cuff's alert gives way to it (the cuff advertises: it is heard, one alert)."""
        cuff = str(text(address, "address", required=True)).upper()
        async with self._uow.transaction() as tx:
            in_session = await _chair_in_session(tx.session, cuff, self._uow.site)
            if in_session is None:
                return False
            chair, session, rows = in_session
            finding = cuff_offline(
                cuff,
                chair.name,
                require_utc(since, "since"),
                reason,
                advice,
                attempts,
                self._zone,
            )
            changes = reconcile(
                [alert_of(r) for r in rows.values()],
                [finding],
                [CUFF_SILENT_CONDITION],
                tx.now,
                session_id=session.id,
                chair_id=chair.id,
                clear_note="the cuff advertises again but cannot be connected",
            )
            await apply_alert_changes(tx, changes, rows)
            return True

    async def cuff_reachable(self, address: str, *, at: datetime) -> None:
        """The cuff connected again: its `cuff_offline` alert (either cause) clears."""
        cuff = str(text(address, "address", required=True)).upper()
        async with self._uow.transaction() as tx:
            in_session = await _chair_in_session(tx.session, cuff, self._uow.site)
            if in_session is None or not CUFF_OFFLINE_CONDITIONS & in_session[2].keys():
                return
            rows = in_session[2]
            changes = reconcile(
                [alert_of(r) for r in rows.values()],
                [],
                sorted(CUFF_OFFLINE_CONDITIONS),
                tx.now,
                clear_note="the cuff connected again",
            )
            await apply_alert_changes(tx, changes, rows)


async def _chair_in_session(
    session: AsyncSession, cuff: str, site: str
) -> tuple[models.Chair, models.Session, dict[str, models.Alert]] | None:
    """The chair that has `cuff`, its open session and that session's open alerts by
    condition; None when no chair in session has the cuff."""
    chair = await session.scalar(
        select(models.Chair).where(models.Chair.cuff_address == cuff, models.Chair.site == site)
    )
    if chair is None:
        return None
    open_session = await open_session_of_chair(session, chair.id)
    if open_session is None:
        return None
    rows = {a.condition: a for a in await open_alert_rows(session, open_session.id)}
    return chair, open_session, rows

"""The devices users subscribed to Web Push, in the `push_subscriptions` table (issue
#15). Writes go through the clinic's writer engine (SQLite has one writer), reads
through the readers' pool, each a short transaction of its own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from vitalsd.notify.receipts import mark_shown_async
from vitalsd.store.models import PushSubscription, User

# "push:<id>": how the notifier names one device as a recipient (NOTIFY_CONTRACT.md).
RECIPIENT_PREFIX = "push:"


@dataclass(frozen=True, slots=True)
class PushDevice:
    """A subscription as its owner sees it in their profile (no keys)."""

    id: int
    endpoint: str
    user_agent: str | None
    created_at: datetime
    last_success_at: datetime | None


@dataclass(frozen=True, slots=True)
class PushTarget:
    """What sending to one device needs: where, its keys, and whose it is now."""

    id: int
    endpoint: str
    p256dh: str
    auth: str
    username: str
    role: str
    token_version: int
    disabled: bool

    @property
    def subscription_info(self) -> dict[str, object]:
        """The shape `PushSubscription.toJSON()` gives and pywebpush takes."""
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


def recipient_of(subscription_id: int) -> str:
    return f"{RECIPIENT_PREFIX}{subscription_id}"


def subscription_id_of(recipient: str) -> int | None:
    """The subscription a "push:<id>" recipient names, None for another channel's."""
    if not recipient.startswith(RECIPIENT_PREFIX):
        return None
    number = recipient.removeprefix(RECIPIENT_PREFIX)
    return int(number) if number.isdigit() else None


class PushSubscriptions:
    def __init__(self, reads: AsyncEngine, writes: AsyncEngine | None = None) -> None:
        self._reads = reads
        self._writes = writes or reads

    async def subscribe(
        self,
        user_id: int,
        *,
        endpoint: str,
        p256dh: str,
        auth: str,
        user_agent: str | None,
        now: datetime,
    ) -> PushDevice:
        """Keep this device for `user_id`. A browser has one endpoint per service worker:
        the same endpoint subscribed again (a shared tablet handed to the next nurse) now
        belongs to whoever subscribed it last, with the keys it sent last."""
        async with self._writes.begin() as connection:
            found = (
                await connection.execute(
                    select(PushSubscription.id).where(PushSubscription.endpoint == endpoint)
                )
            ).scalar_one_or_none()
            values = {
                "user_id": user_id,
                "p256dh": p256dh,
                "auth": auth,
                "user_agent": user_agent,
            }
            if found is None:
                await connection.execute(
                    insert(PushSubscription).values(endpoint=endpoint, created_at=now, **values)
                )
            else:
                await connection.execute(
                    update(PushSubscription)
                    .where(PushSubscription.id == found)
                    .values(created_at=now, last_success_at=None, **values)
                )
            row = (
                await connection.execute(
                    select(PushSubscription).where(PushSubscription.endpoint == endpoint)
                )
            ).one()
        return PushDevice(row.id, row.endpoint, row.user_agent, row.created_at, row.last_success_at)

    async def devices_of(self, user_id: int) -> list[PushDevice]:
        async with self._reads.connect() as connection:
            rows = await connection.execute(
                select(PushSubscription)
                .where(PushSubscription.user_id == user_id)
                .order_by(PushSubscription.id)
            )
            return [
                PushDevice(r.id, r.endpoint, r.user_agent, r.created_at, r.last_success_at)
                for r in rows
            ]

    async def unsubscribe(self, user_id: int, endpoint: str) -> bool:
        """Forget the user's device with this endpoint; False if they had none."""
        async with self._writes.begin() as connection:
            result = await connection.execute(
                delete(PushSubscription).where(
                    PushSubscription.user_id == user_id, PushSubscription.endpoint == endpoint
                )
            )
        return bool(result.rowcount)

    async def ids_for_roles(self, roles: Sequence[str]) -> list[int]:
        """Every device of an enabled user whose role is one of `roles`."""
        async with self._reads.connect() as connection:
            rows = await connection.execute(
                select(PushSubscription.id)
                .join(User, User.id == PushSubscription.user_id)
                .where(User.role.in_(list(roles)), User.disabled.is_(False))
                .order_by(PushSubscription.id)
            )
            return list(rows.scalars())

    async def target(self, subscription_id: int) -> PushTarget | None:
        async with self._reads.connect() as connection:
            row = (
                await connection.execute(
                    select(
                        PushSubscription.id,
                        PushSubscription.endpoint,
                        PushSubscription.p256dh,
                        PushSubscription.auth,
                        User.username,
                        User.role,
                        User.token_version,
                        User.disabled,
                    )
                    .join(User, User.id == PushSubscription.user_id)
                    .where(PushSubscription.id == subscription_id)
                )
            ).one_or_none()
        return None if row is None else PushTarget(*row)

    async def delivered(self, subscription_id: int, at: datetime) -> None:
        async with self._writes.begin() as connection:
            await connection.execute(
                update(PushSubscription)
                .where(PushSubscription.id == subscription_id)
                .values(last_success_at=at)
            )

    async def forget(self, subscription_id: int) -> None:
        """The push service said this subscription is gone (404/410): delete it."""
        async with self._writes.begin() as connection:
            await connection.execute(
                delete(PushSubscription).where(PushSubscription.id == subscription_id)
            )

    async def report_shown(self, key: str, at: datetime) -> bool | None:
        """A device's service worker showed the notification `key`: its receipt moves to
        `shown` (never backwards; True if it moved)."""
        return bool(await mark_shown_async(self._writes, key, at))

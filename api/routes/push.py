"""Web Push (issue #15): the VAPID public key a device subscribes with, the signed-in
user's devices, and what a notification's service worker sends back: "shown" receipts
and the Acknowledge action.

The service worker has no access token and cannot read the dashboard's CSRF cookie: it
proves itself with the action token its push payload carried (vitalsd.notify.
push_actions), and fetches with `credentials: "omit"`, so the guard's Origin check still
applies (its fetch is same-origin) while no cookie makes it a cookie session.
"""

from __future__ import annotations

import base64
import binascii
import functools
from datetime import datetime
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Response
from pydantic import Field, field_validator
from starlette.requests import HTTPConnection

from api.deps import ApiContext, ClinicDep, Context, CurrentUser, get_context
from api.errors import AUTH_ERRORS, CONFLICT, NOT_FOUND
from api.params import IdPath
from api.schemas import AlertOut, Body, Out
from vitalsd.auth import Actor, Permission, role_may
from vitalsd.domain import Role
from vitalsd.errors import NotFound
from vitalsd.notify import push_actions
from vitalsd.notify.vapid import VapidKeys, load_or_create

router = APIRouter(prefix="/api/push", tags=["push"], responses=AUTH_ERRORS)


@functools.lru_cache(maxsize=8)
def _vapid_keys(data_dir: Path) -> VapidKeys:
    return load_or_create(data_dir)


def _spent(connection: HTTPConnection) -> push_actions.SpentActions:
    """This app's spent action tokens, made on first use."""
    spent: push_actions.SpentActions | None = getattr(connection.app.state, "push_spent", None)
    if spent is None:
        spent = push_actions.SpentActions(get_context(connection).clock)
        connection.app.state.push_spent = spent
    return spent


def _b64url(value: str, length: int, name: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ValueError(f"{name} is not base64url") from None
    if len(raw) != length:
        raise ValueError(f"{name} must be {length} bytes, got {len(raw)}")
    return value


class VapidKeyOut(Out):
    public_key: str = Field(description="applicationServerKey: P-256 point, base64url")


class SubscriptionKeys(Body):
    p256dh: str = Field(max_length=128)
    auth: str = Field(max_length=64)

    @field_validator("p256dh")
    @classmethod
    def _point(cls, value: str) -> str:
        value = _b64url(value, 65, "p256dh")
        if base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))[0] != 4:
            raise ValueError("p256dh must be an uncompressed P-256 point")
        return value

    @field_validator("auth")
    @classmethod
    def _secret(cls, value: str) -> str:
        return _b64url(value, 16, "auth")


class SubscriptionIn(Body):
    """What `PushSubscription.toJSON()` gives in the browser."""

    endpoint: str = Field(max_length=2048)
    expirationTime: float | None = None  # the browser's own name
    keys: SubscriptionKeys

    @field_validator("endpoint")
    @classmethod
    def _https(cls, value: str) -> str:
        # Push services are HTTPS (RFC 8030 8): anything else is not a push service,
        # and the daemon must not be made to post to arbitrary places on its network.
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("endpoint must be an https:// push service URL")
        return value


class DeviceOut(Out):
    id: int
    endpoint: str
    user_agent: str | None
    created_at: datetime
    last_success_at: datetime | None


class ReceiptIn(Body):
    key: str = Field(min_length=1, max_length=512)
    state: Literal["shown"]
    token: str = Field(min_length=1, max_length=2048)


class ReceiptOut(Out):
    key: str
    state: Literal["shown"]
    moved: bool = Field(description="False if it had got that far already (or further)")


class ActionIn(Body):
    token: str = Field(min_length=1, max_length=2048)


async def _user_id(context: ApiContext, user: Actor) -> int:
    return (await context.clinic.get_account(user.username)).id


@router.get("/vapid-public-key", response_model=VapidKeyOut)
async def vapid_public_key(context: Context, user: CurrentUser) -> VapidKeyOut:
    """The key to pass as `applicationServerKey` to `PushManager.subscribe()`."""
    return VapidKeyOut(public_key=_vapid_keys(context.settings.data_dir.expanduser()).public_key)


@router.get("/subscriptions", response_model=list[DeviceOut])
async def my_devices(
    connection: HTTPConnection, context: Context, user: CurrentUser
) -> list[DeviceOut]:
    """The signed-in user's devices that get alerts."""
    devices = await context.clinic.push_devices.devices_of(await _user_id(context, user))
    return [DeviceOut.model_validate(d) for d in devices]


@router.post("/subscriptions", response_model=DeviceOut, status_code=201)
async def subscribe(
    body: SubscriptionIn, connection: HTTPConnection, context: Context, user: CurrentUser
) -> DeviceOut:
    """Send alerts to this device (its push subscription); subscribing again updates it."""
    agent = connection.headers.get("user-agent")
    device = await context.clinic.push_devices.subscribe(
        await _user_id(context, user),
        endpoint=body.endpoint,
        p256dh=body.keys.p256dh,
        auth=body.keys.auth,
        user_agent=agent[:256] if agent else None,
        now=context.clock(),
    )
    return DeviceOut.model_validate(device)


@router.delete("/subscriptions/{subscription_id}", status_code=204, responses=NOT_FOUND)
async def unsubscribe(
    subscription_id: IdPath, connection: HTTPConnection, context: Context, user: CurrentUser
) -> Response:
    """Stop sending alerts to one of the signed-in user's devices."""
    subscriptions = context.clinic.push_devices
    user_id = await _user_id(context, user)
    mine = [d for d in await subscriptions.devices_of(user_id) if d.id == subscription_id]
    if not mine or not await subscriptions.unsubscribe(user_id, mine[0].endpoint):
        raise NotFound(f"you have no push device {subscription_id}")
    return Response(status_code=204)


def _refused(error: push_actions.InvalidAction | str) -> HTTPException:
    return HTTPException(401, str(error))


async def _actor_of(context: ApiContext, action: push_actions.PushAction) -> Actor:
    """Who the token acts for, as the database knows them now: a disabled account, a
    sign-out or password change (the token version moved on) ends its actions too."""
    try:
        account = await context.clinic.get_account(action.username)
    except NotFound:
        raise _refused("the notification's user no longer exists") from None
    if account.disabled:
        raise _refused("this account is disabled")
    if account.token_version != action.token_version:
        raise _refused("signed out since this notification: open the dashboard")
    return Actor(account.username, Role(account.role))


@router.post("/receipts", response_model=ReceiptOut)
async def report_shown(body: ReceiptIn, context: Context) -> ReceiptOut:
    """The service worker showed the notification: its receipt moves to `shown` (never
    backwards). Authenticated by the notification's own token, bound to its key."""
    try:
        action = push_actions.verify(context.tokens.secret, body.token, context.clock())
    except push_actions.InvalidAction as error:
        raise _refused(error) from None
    if action.key != body.key:
        raise _refused("this token belongs to another notification")
    await _actor_of(context, action)
    moved = await context.clinic.push_devices.report_shown(body.key, context.clock())
    if moved is None:  # the notifier's receipts (#15, branch `notify`) not merged yet
        raise HTTPException(503, "receipts are not kept by this build")
    return ReceiptOut(key=body.key, state="shown", moved=moved)


@router.post("/actions/acknowledge", response_model=AlertOut, responses=NOT_FOUND | CONFLICT)
async def acknowledge_from_notification(
    body: ActionIn, connection: HTTPConnection, context: Context, clinic: ClinicDep
) -> AlertOut:
    """A notification's Acknowledge: the same clinic call and audit as the dashboard's
    button (`POST /api/alerts/{id}/acknowledge`), as the nurse whose device it is. The
    token works once."""
    try:
        action = push_actions.verify(context.tokens.secret, body.token, context.clock())
    except push_actions.InvalidAction as error:
        raise _refused(error) from None
    user = await _actor_of(context, action)
    if not role_may(user.role, Permission.ACKNOWLEDGE_ALERTS):
        raise HTTPException(403, f"role {user.role.value} may not acknowledge alerts")
    try:
        _spent(connection).spend(action)
    except push_actions.InvalidAction as error:
        raise HTTPException(409, str(error)) from None
    return AlertOut.model_validate(await clinic.acknowledge_alert(action.alert_id, by=user))

"""FastAPI dependencies: the clinic service, the settings, the signed-in user and their role.

Routes declare what they need (`Reader`, `Clinician`, ...) and never reach for a global:
the `ApiContext` hangs off the app that `create_app` built, so two apps in one process
(two tests) never share state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Final

from fastapi import Depends, HTTPException
from fastapi.security import OAuth2PasswordBearer
from starlette.requests import HTTPConnection

# The dashboard's HttpOnly cookie (issue #6), named where the CSRF guard reads it.
from api.guards import TOKEN_COOKIE as TOKEN_COOKIE
from api.handshake import AccountCache, SnapshotCache
from api.stream import StreamHub
from api.throttle import LoginThrottle
from api.tickets import TicketBook
from vitalsd.auth import (
    InvalidToken,
    PasswordHasher,
    Permission,
    TokenClaims,
    TokenIssuer,
    role_may,
    roles_with,
)
from vitalsd.clinic import Actor, Clinic
from vitalsd.domain import Role
from vitalsd.errors import NotFound
from vitalsd.settings import Settings

TOKEN_URL: Final = "/api/auth/token"

BleStatus = Callable[[], Mapping[str, object]]


def ble_not_running() -> Mapping[str, object]:
    return {"state": "not_running"}


@dataclass
class ApiContext:
    """Everything a request may need, built once per app."""

    clinic: Clinic
    settings: Settings
    tokens: TokenIssuer
    passwords: PasswordHasher
    hub: StreamHub
    clock: Callable[[], datetime]
    accounts: AccountCache
    snapshots: SnapshotCache
    throttle: LoginThrottle
    tickets: TicketBook
    ble_status: BleStatus = field(default=ble_not_running)
    # Open or opening `/ws` streams per user (issue #17: a cap per user).
    stream_slots: dict[str, int] = field(default_factory=dict)
    # Argon2 hashes at once (each takes its memory cost, 64 MiB by default): a burst of
    # logins waits here instead of growing the daemon's memory (issue #17, finding 4).
    password_work: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(2))


def client_address(connection: HTTPConnection) -> str:
    """The client's address as uvicorn saw it (through trusted proxies only)."""
    return connection.client.host if connection.client is not None else "unknown"


def get_context(connection: HTTPConnection) -> ApiContext:
    context: ApiContext = connection.app.state.context
    return context


Context = Annotated[ApiContext, Depends(get_context)]


def get_clinic(context: Context) -> Clinic:
    return context.clinic


def get_settings(context: Context) -> Settings:
    return context.settings


ClinicDep = Annotated[Clinic, Depends(get_clinic)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

# auto_error=False: a missing header is not yet a failure, the cookie may carry the token.
_bearer = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def token_of(connection: HTTPConnection, *, allow_query: bool = False) -> str | None:
    """The token from `Authorization: Bearer`, the dashboard's cookie, or (WebSocket only,
    where browsers cannot set headers) the `token` query parameter (where the
    `ws_token_in_url` setting still allows it)."""
    header = connection.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if allow_query and connection.query_params.get("token"):
        if get_context(connection).settings.ws_token_in_url:
            return connection.query_params["token"]
        return None
    return connection.cookies.get(TOKEN_COOKIE) or None


async def authenticate(
    context: ApiContext, token: str | None, *, cached: bool = False
) -> tuple[Actor, TokenClaims]:
    """The user a token names, as the database knows them now (a disabled account or a
    changed role takes effect at once, not when the token expires), and the token's claims.

    `cached` (the `/ws` handshake): as `context.accounts` knew them at most its TTL ago,
    so a connect storm does not query the user per connect; a disable through the API
    clears the cache at once (api/routes/users.py)."""
    if token is None:
        raise unauthorized(f"not authenticated: get a token from POST {TOKEN_URL}")
    try:
        claims = context.tokens.verify(token, context.clock())
    except InvalidToken as error:
        raise unauthorized(str(error)) from None
    try:
        if cached:
            user = await context.accounts.get(claims.username)
        else:
            user = await context.clinic.get_account(claims.username)
    except NotFound:
        raise unauthorized("the token's user no longer exists") from None
    if user.disabled:
        raise unauthorized("this account is disabled")
    if user.token_version != claims.version:
        # Issue #17: logout, a disable, a password or role change end every token at once.
        raise unauthorized("this token was revoked (signed out, or the password or role changed)")
    return Actor(user.username, Role(user.role)), claims


async def current_user(
    connection: HTTPConnection,
    context: Context,
    _: Annotated[str | None, Depends(_bearer)] = None,  # documents the scheme in OpenAPI
) -> Actor:
    user, _claims = await authenticate(context, token_of(connection))
    return user


CurrentUser = Annotated[Actor, Depends(current_user)]


def forbidden(user: Actor, permission: Permission) -> HTTPException:
    allowed = ", ".join(role.value for role in roles_with(permission))
    return HTTPException(
        403, f"role {user.role.value} may not {permission.value.replace('_', ' ')} ({allowed})"
    )


def require(permission: Permission) -> Callable[..., Awaitable[Actor]]:
    """A dependency that lets through only users whose role holds `permission`."""

    async def permitted(user: CurrentUser) -> Actor:
        if not role_may(user.role, permission):
            raise forbidden(user, permission)
        return user

    permitted.__name__ = f"require_{permission.value}"
    return permitted


Reader = Annotated[Actor, Depends(require(Permission.READ))]
Observer = Annotated[Actor, Depends(require(Permission.RECORD_OBSERVATIONS))]
AlertResponder = Annotated[Actor, Depends(require(Permission.ACKNOWLEDGE_ALERTS))]
AlertResolver = Annotated[Actor, Depends(require(Permission.RESOLVE_ALERTS))]
SessionRunner = Annotated[Actor, Depends(require(Permission.RUN_SESSIONS))]
PatientManager = Annotated[Actor, Depends(require(Permission.MANAGE_PATIENTS))]
EquipmentManager = Annotated[Actor, Depends(require(Permission.MANAGE_EQUIPMENT))]
UserManager = Annotated[Actor, Depends(require(Permission.MANAGE_USERS))]
Auditor = Annotated[Actor, Depends(require(Permission.READ_AUDIT))]
# Nurses and clinicians export records; an admin (who may read) may not.
Exporter = Annotated[Actor, Depends(require(Permission.EXPORT_RECORDS))]
ClinicExporter = Annotated[Actor, Depends(require(Permission.EXPORT_CLINIC))]

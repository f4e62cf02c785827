"""Log in (`POST /api/auth/token`, the OAuth2 password flow), log out, who am I, change
your own password, and one-time tickets for `/ws`.

Issue #17: logins are throttled per client address and per username (429 with
`Retry-After`), an account locks after `login_lockout_failures` failures in a row until
an admin unlocks it, and every login, failure and logout is audited with the user and
the address. Logging out, like a password change, ends every token of the user.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from fastapi.security import OAuth2PasswordRequestForm
from starlette.requests import Request

from api.deps import (
    TOKEN_COOKIE,
    Context,
    CurrentUser,
    authenticate,
    client_address,
    token_of,
    unauthorized,
)
from api.errors import AUTH_ERRORS, ErrorBody
from api.guards import CSRF_COOKIE, csrf_token_for
from api.schemas import Me, PasswordChangeIn, TokenOut, WsTicketOut
from vitalsd.auth import ROLE_PERMISSIONS
from vitalsd.domain import Role
from vitalsd.errors import InvalidInput, NotFound
from vitalsd.passwords import WeakPassword

router = APIRouter(prefix="/api/auth", tags=["auth"])

# One message for every refusal, so that a name cannot be found out by trying it.
BAD_LOGIN = (
    "incorrect username or password, or the account is locked or disabled "
    "(an admin unlocks an account after repeated failures)"
)
THROTTLED: dict[int | str, dict[str, Any]] = {
    429: {
        "model": ErrorBody,
        "description": "Too many login attempts; `Retry-After` says how many seconds to wait",
    },
}


def _too_many(seconds: int) -> HTTPException:
    return HTTPException(
        429,
        f"too many login attempts: try again in {seconds} s",
        headers={"Retry-After": str(seconds)},
    )


@router.post(
    "/token",
    response_model=TokenOut,
    responses={401: {"model": ErrorBody, "description": BAD_LOGIN}, **THROTTLED},
)
async def log_in(
    request: Request,
    response: Response,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    context: Context,
    cookie: Annotated[
        bool, Query(description="Also set the dashboard's HttpOnly session cookie")
    ] = False,
) -> TokenOut:
    """Exchange a username and password for a bearer token (OAuth2 password flow)."""
    address = client_address(request)
    wait = context.throttle.retry_after(form.username, address)
    if wait is not None:
        raise _too_many(wait)
    context.throttle.attempted(address)
    try:
        stored: str | None = (await context.clinic.get_user(form.username)).password_hash
        before = await context.clinic.get_account(form.username)
        usable = not (before.disabled or before.locked)
    except NotFound:
        stored, usable = None, False
    # Argon2 is deliberately slow: off the event loop, so readings keep flowing.
    async with context.password_work:
        valid = await asyncio.to_thread(context.passwords.verify, form.password, stored)
    account = await context.clinic.record_login(
        form.username,
        address=address,
        succeeded=valid and usable,
        lock_after=context.settings.login_lockout_failures,
    )
    if account is None or not (valid and usable):
        context.throttle.failed(form.username)
        raise unauthorized(BAD_LOGIN)
    role = Role(account.role)
    now = context.clock()
    token = context.tokens.issue(account.username, role, now, version=account.token_version)
    expires_at = now + context.tokens.lifetime
    if cookie:
        secure = request.url.scheme == "https"
        max_age = int(context.tokens.lifetime.total_seconds())
        response.set_cookie(
            TOKEN_COOKIE,
            token,
            max_age=max_age,
            httponly=True,
            samesite="strict",
            secure=secure,
            path="/",
        )
        # Readable by the dashboard's script, which echoes it in X-CSRF-Token (api/guards.py).
        response.set_cookie(
            CSRF_COOKIE,
            csrf_token_for(token, context.tokens.secret),
            max_age=max_age,
            httponly=False,
            samesite="strict",
            secure=secure,
            path="/",
        )
    return TokenOut(access_token=token, expires_at=expires_at, username=account.username, role=role)


@router.post("/logout", status_code=204, responses=AUTH_ERRORS)
async def log_out(request: Request, user: CurrentUser, context: Context) -> Response:
    """Sign out everywhere: every token of this user ends now (cookie and bearer alike),
    their open streams close, and the dashboard's cookies are cleared."""
    account = await context.clinic.record_logout(user.username, address=client_address(request))
    context.accounts.forget(account.username)
    context.hub.revoke(account.username, "signed out")
    response = Response(status_code=204)
    response.delete_cookie(TOKEN_COOKIE, path="/", httponly=True, samesite="strict")
    response.delete_cookie(CSRF_COOKIE, path="/", samesite="strict")
    return response


@router.get("/me", response_model=Me, responses=AUTH_ERRORS)
async def who_am_i(user: CurrentUser) -> Me:
    return Me(
        username=user.username,
        role=user.role,
        permissions=sorted(p.value for p in ROLE_PERMISSIONS[user.role]),
    )


@router.post(
    "/password",
    status_code=204,
    responses=AUTH_ERRORS,
)
async def change_password(
    request: Request, body: PasswordChangeIn, user: CurrentUser, context: Context
) -> Response:
    """Change your own password. Every token of yours ends (sign in again everywhere)."""
    stored = (await context.clinic.get_user(user.username)).password_hash
    async with context.password_work:
        right = await asyncio.to_thread(context.passwords.verify, body.current_password, stored)
    if not right:
        raise unauthorized("the current password is wrong")
    try:
        async with context.password_work:
            new_hash = await asyncio.to_thread(
                context.passwords.hash, body.new_password, user.username
            )
    except WeakPassword as error:
        raise InvalidInput(str(error)) from None
    account = await context.clinic.set_password(user.username, new_hash, by=user)
    context.accounts.forget(account.username)
    context.hub.revoke(account.username, "the password was changed")
    response = Response(status_code=204)
    response.delete_cookie(TOKEN_COOKIE, path="/", httponly=True, samesite="strict")
    response.delete_cookie(CSRF_COOKIE, path="/", samesite="strict")
    return response


@router.post("/ws-ticket", response_model=WsTicketOut, responses=AUTH_ERRORS)
async def ws_ticket(request: Request, user: CurrentUser, context: Context) -> WsTicketOut:
    """A one-time ticket for `/ws?ticket=`, valid for 30 seconds: for a client that can
    send neither a header nor the cookie on its WebSocket, instead of its token."""
    token = token_of(request)
    assert token is not None  # CurrentUser authenticated it
    await authenticate(context, token)
    ticket, expires_at = context.tickets.issue(token)
    return WsTicketOut(ticket=ticket, expires_at=expires_at)

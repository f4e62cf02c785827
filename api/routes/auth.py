"""Log in (`POST /api/auth/token`, the OAuth2 password flow), log out, who am I."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.security import OAuth2PasswordRequestForm
from starlette.requests import Request

from api.deps import TOKEN_COOKIE, Context, CurrentUser, unauthorized
from api.errors import AUTH_ERRORS, ErrorBody
from api.schemas import Me, TokenOut
from vitalsd.auth import ROLE_PERMISSIONS
from vitalsd.domain import Role
from vitalsd.errors import NotFound

router = APIRouter(prefix="/api/auth", tags=["auth"])

BAD_LOGIN = "incorrect username or password"


@router.post(
    "/token",
    response_model=TokenOut,
    responses={401: {"model": ErrorBody, "description": BAD_LOGIN}},
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
    try:
        user = await context.clinic.get_user(form.username)
        stored: str | None = user.password_hash
    except NotFound:
        user, stored = None, None
    # Argon2 is deliberately slow: off the event loop, so readings keep flowing.
    valid = await asyncio.to_thread(context.passwords.verify, form.password, stored)
    if user is None or not valid or user.disabled:
        raise unauthorized(BAD_LOGIN)
    role = Role(user.role)
    now = context.clock()
    token = context.tokens.issue(user.username, role, now)
    expires_at = now + context.tokens.lifetime
    if cookie:
        response.set_cookie(
            TOKEN_COOKIE,
            token,
            max_age=int(context.tokens.lifetime.total_seconds()),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
    return TokenOut(access_token=token, expires_at=expires_at, username=user.username, role=role)


@router.post("/logout", status_code=204, responses=AUTH_ERRORS)
async def log_out(user: CurrentUser) -> Response:
    """Forget the dashboard's cookie (a bearer token simply expires)."""
    response = Response(status_code=204)
    response.delete_cookie(TOKEN_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/me", response_model=Me, responses=AUTH_ERRORS)
async def who_am_i(user: CurrentUser) -> Me:
    return Me(
        username=user.username,
        role=user.role,
        permissions=sorted(p.value for p in ROLE_PERMISSIONS[user.role]),
    )

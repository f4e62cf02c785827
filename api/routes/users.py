"""User accounts (admins only): list, create, disable, enable."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import ClinicDep, Context, UserManager
from api.errors import AUTH_ERRORS, CONFLICT, NOT_FOUND
from api.schemas import UserIn, UserOut

router = APIRouter(prefix="/api/users", tags=["users"], responses=AUTH_ERRORS)

UsernamePath = Annotated[str, Path(min_length=1, max_length=128)]


@router.get("", response_model=list[UserOut])
async def list_users(clinic: ClinicDep, user: UserManager) -> list[UserOut]:
    return [UserOut.model_validate(u) for u in await clinic.list_users()]


@router.post("", response_model=UserOut, status_code=201, responses=CONFLICT)
async def create_user(body: UserIn, context: Context, user: UserManager) -> UserOut:
    password_hash = await asyncio.to_thread(context.passwords.hash, body.password)
    created = await context.clinic.create_user(body.username, password_hash, body.role, by=user)
    return UserOut.model_validate(created)


@router.post("/{username}/disable", response_model=UserOut, responses=NOT_FOUND)
async def disable_user(username: UsernamePath, context: Context, user: UserManager) -> UserOut:
    """Lock an account out at once: its tokens stop working on their next use and its
    open `/ws` streams are closed (1008)."""
    disabled = await context.clinic.set_user_disabled(username, True, by=user)
    context.accounts.forget(username)
    context.hub.revoke(username, "this account is disabled")
    return UserOut.model_validate(disabled)


@router.post("/{username}/enable", response_model=UserOut, responses=NOT_FOUND)
async def enable_user(username: UsernamePath, context: Context, user: UserManager) -> UserOut:
    enabled = await context.clinic.set_user_disabled(username, False, by=user)
    context.accounts.forget(username)
    return UserOut.model_validate(enabled)

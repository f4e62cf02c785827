"""User accounts (admins only): list, create, disable, enable, reset a password, change
a role, unlock after failed logins.

Issue #17: disabling, a password reset and a role change end every token of the user at
once (and close their streams); the last active admin can be neither disabled nor given
another role.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import ApiContext, ClinicDep, Context, UserManager
from api.errors import AUTH_ERRORS, CONFLICT, NOT_FOUND
from api.schemas import PasswordResetIn, RoleIn, UserIn, UserOut
from vitalsd.errors import InvalidInput
from vitalsd.passwords import WeakPassword
from vitalsd.views import UserView

router = APIRouter(prefix="/api/users", tags=["users"], responses=AUTH_ERRORS)

UsernamePath = Annotated[str, Path(min_length=1, max_length=128)]


async def _out(context: ApiContext, user: UserView) -> UserOut:
    account = await context.clinic.get_account(user.username)
    return UserOut.model_validate(user).model_copy(update={"locked": account.locked})


async def _hash(context: ApiContext, password: str, username: str) -> str:
    try:
        async with context.password_work:
            return await asyncio.to_thread(context.passwords.hash, password, username)
    except WeakPassword as error:
        raise InvalidInput(str(error)) from None


def _end_sessions(context: ApiContext, username: str, reason: str) -> None:
    """Tokens already fail (their version moved on); also drop the cached account and
    close the user's open streams now."""
    context.accounts.forget(username)
    context.hub.revoke(username, reason)


@router.get("", response_model=list[UserOut])
async def list_users(clinic: ClinicDep, context: Context, user: UserManager) -> list[UserOut]:
    return [await _out(context, u) for u in await clinic.list_users()]


@router.post("", response_model=UserOut, status_code=201, responses=CONFLICT)
async def create_user(body: UserIn, context: Context, user: UserManager) -> UserOut:
    password_hash = await _hash(context, body.password, body.username)
    created = await context.clinic.create_user(body.username, password_hash, body.role, by=user)
    return await _out(context, created)


@router.post("/{username}/disable", response_model=UserOut, responses={**NOT_FOUND, **CONFLICT})
async def disable_user(username: UsernamePath, context: Context, user: UserManager) -> UserOut:
    """Lock an account out at once: its tokens stop working and its open `/ws` streams
    are closed (1008). Enabling it again gives none of them back. 409 for the last
    active admin."""
    disabled = await context.clinic.set_user_disabled(username, True, by=user)
    _end_sessions(context, disabled.username, "this account is disabled")
    return await _out(context, disabled)


@router.post("/{username}/enable", response_model=UserOut, responses=NOT_FOUND)
async def enable_user(username: UsernamePath, context: Context, user: UserManager) -> UserOut:
    enabled = await context.clinic.set_user_disabled(username, False, by=user)
    context.accounts.forget(enabled.username)
    return await _out(context, enabled)


@router.post("/{username}/password", response_model=UserOut, responses=NOT_FOUND)
async def reset_password(
    username: UsernamePath, body: PasswordResetIn, context: Context, user: UserManager
) -> UserOut:
    """Set another user's password (they forgot theirs); their tokens end, a lockout
    is lifted."""
    target = await context.clinic.get_user(username)
    password_hash = await _hash(context, body.new_password, target.username)
    account = await context.clinic.set_password(target.username, password_hash, by=user)
    _end_sessions(context, account.username, "the password was reset")
    return await _out(context, await context.clinic.get_user(account.username))


@router.post("/{username}/role", response_model=UserOut, responses={**NOT_FOUND, **CONFLICT})
async def change_role(
    username: UsernamePath, body: RoleIn, context: Context, user: UserManager
) -> UserOut:
    """Give a user another role; their tokens (which carry the old one) end. 409 for
    the last active admin."""
    account = await context.clinic.set_user_role(username, body.role, by=user)
    _end_sessions(context, account.username, "the account's role changed")
    return await _out(context, await context.clinic.get_user(account.username))


@router.post("/{username}/unlock", response_model=UserOut, responses=NOT_FOUND)
async def unlock_user(username: UsernamePath, context: Context, user: UserManager) -> UserOut:
    """Let a user log in again after repeated failed logins locked the account."""
    account = await context.clinic.unlock_user(username, by=user)
    context.accounts.forget(account.username)
    return await _out(context, await context.clinic.get_user(account.username))

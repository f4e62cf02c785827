"""Accounts: sign-in, sign-out, passwords, roles and lockout of the clinic's users
(issue #17). Every change that could leave an old token trusted moves the user's token
version on, which ends every token of theirs at once; each is audited with who and from
where."""

from __future__ import annotations

from vitalsd.accounts import Account, audited_name
from vitalsd.auth import SYSTEM_ACTOR, Actor
from vitalsd.domain import AuditAction, Role

from .lookups import guard_last_admin, user_named, user_row
from .rows import account_of
from .unit_of_work import UnitOfWork


class Accounts:
    """Writes of user accounts, each one transaction with its audit (the account a
    sign-in checks is read by `Reads.get_account`)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def record_login(
        self, username: str, *, address: str, succeeded: bool, lock_after: int
    ) -> Account | None:
        """Audit a login attempt from `address`. A failure counts against the account (if
        it exists) and locks it at `lock_after` in a row; a success clears the count."""
        async with self._uow.transaction(wake=False) as tx:
            row = await tx.session.scalar(user_named(username))
            if row is None:
                tx.audit(
                    audited_name(username),
                    AuditAction.LOGIN_FAILED,
                    "user",
                    0,
                    note=f"unknown user; from {address}",
                )
                return None
            if succeeded:
                row.failed_logins = 0
                tx.audit(row.username, AuditAction.LOGIN, "user", row.id, note=f"from {address}")
                return account_of(row)
            row.failed_logins += 1
            tx.audit(
                row.username,
                AuditAction.LOGIN_FAILED,
                "user",
                row.id,
                note=f"failure {row.failed_logins} in a row; from {address}",
            )
            if row.locked_at is None and row.failed_logins >= lock_after:
                row.locked_at = tx.now
                tx.audit(
                    SYSTEM_ACTOR.username,
                    AuditAction.LOCKED,
                    "user",
                    row.id,
                    note=f"{row.failed_logins} failed logins in a row; last from {address}",
                )
            return account_of(row)

    async def record_logout(self, username: str, *, address: str) -> Account:
        """End every token of the user (logout signs out every device) and audit it."""
        async with self._uow.transaction(wake=False) as tx:
            row = await user_row(tx.session, username)
            row.token_version += 1
            tx.audit(row.username, AuditAction.LOGOUT, "user", row.id, note=f"from {address}")
            return account_of(row)

    async def set_password(self, username: str, password_hash: str, *, by: Actor) -> Account:
        """A new password (the user's own, or an admin's reset): every token of the user
        ends, and a lockout is lifted."""
        async with self._uow.transaction(wake=False) as tx:
            row = await user_row(tx.session, username)
            row.password_hash = password_hash
            row.token_version += 1
            row.failed_logins = 0
            row.locked_at = None
            own = by.username.casefold() == row.username.casefold()
            action = AuditAction.PASSWORD_CHANGED if own else AuditAction.PASSWORD_RESET
            tx.audit(by.username, action, "user", row.id)
            return account_of(row)

    async def set_user_role(self, username: str, role: Role, *, by: Actor) -> Account:
        """Give a user another role; their tokens end (they carry the old role). The last
        active admin keeps theirs."""
        new_role = Role(role).value
        async with self._uow.transaction(wake=False) as tx:
            row = await user_row(tx.session, username)
            if row.role == new_role:
                return account_of(row)
            if row.role == Role.ADMIN.value:
                await guard_last_admin(tx.session, row)
            previous = row.role
            row.role = new_role
            row.token_version += 1
            tx.audit(
                by.username,
                AuditAction.ROLE_CHANGED,
                "user",
                row.id,
                from_state=previous,
                to_state=new_role,
            )
            return account_of(row)

    async def unlock_user(self, username: str, *, by: Actor) -> Account:
        """Lift a lockout after failed logins."""
        async with self._uow.transaction(wake=False) as tx:
            row = await user_row(tx.session, username)
            was_locked = row.locked_at is not None
            row.locked_at = None
            row.failed_logins = 0
            if was_locked:
                tx.audit(by.username, AuditAction.UNLOCKED, "user", row.id)
            return account_of(row)

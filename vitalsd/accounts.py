"""What the sign-in checks need to know about a user account, and the rules for names and
lockout (issue #17). Pure; the clinic stores accounts and calls these."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from vitalsd.errors import Conflict, InvalidInput

# Failed logins in a row that lock an account until an admin unlocks it (OWASP ASVS
# 2.2.1 asks for "no more than 100 failed attempts per hour"; a clinic's few accounts
# and a throttle in front of this allow far fewer).
DEFAULT_LOCK_AFTER: Final = 10
# Letters, digits and . _ @ - (an e-mail address works): no spaces, no control or
# direction-changing characters that make two names look alike on screen.
USERNAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
# An audit record's actor column holds 128 characters; an unknown name tried at the
# login is kept shortened to this.
MAX_AUDITED_NAME: Final = 64


@dataclass(frozen=True, slots=True)
class Account:
    """A user as sign-in sees them: who, their role, and whether their tokens hold."""

    id: int
    username: str
    role: str
    disabled: bool
    token_version: int
    failed_logins: int
    locked_at: datetime | None

    @property
    def locked(self) -> bool:
        return self.locked_at is not None


def valid_username(name: str) -> str:
    """`name` if it may be a new username, else `InvalidInput` saying what may."""
    if not USERNAME_PATTERN.fullmatch(name):
        raise InvalidInput(
            "a username is 1-64 letters, digits, '.', '_', '@' or '-', starting with a "
            f"letter or digit; got {name[:MAX_AUDITED_NAME]!r}"
        )
    return name


def audited_name(name: str) -> str:
    """A name tried at the login, as the audit log keeps it (printable, bounded)."""
    shown = "".join(c if c.isprintable() else "?" for c in name[:MAX_AUDITED_NAME])
    return shown or "(empty)"


def refuse_last_admin(active_admins_left: int) -> None:
    """The last active admin may not be disabled or made another role: nobody could
    manage users afterwards but from the server's command line."""
    if active_admins_left < 1:
        raise Conflict(
            "this is the last active admin: make another user admin first, "
            "or nobody can manage users from the dashboard"
        )

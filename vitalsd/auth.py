"""Who may do what: roles, password hashes and signed access tokens.

Pure where it can be: tokens are issued and checked against an injected `now`, so the
expiry rule is testable without a clock. Storage of users lives with the rest of the
database; this module only knows how to hash, sign and decide.
"""

from __future__ import annotations

import enum
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import jwt
from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError
from pwdlib.hashers.argon2 import Argon2Hasher

from vitalsd.alerts import SYSTEM
from vitalsd.domain import Role

# The password policy lives in vitalsd.passwords; its names stay importable from here.
from vitalsd.passwords import MIN_PASSWORD_LENGTH as MIN_PASSWORD_LENGTH
from vitalsd.passwords import WeakPassword as WeakPassword
from vitalsd.passwords import check_new_password
from vitalsd.settings import Settings


@dataclass(frozen=True)
class Actor:
    """Who does something: the signed-in user (the API passes it) or the system."""

    username: str
    role: Role

    @property
    def is_clinician(self) -> bool:
        return self.role is Role.CLINICIAN


SYSTEM_ACTOR = Actor(SYSTEM, Role.ADMIN)


class Permission(enum.StrEnum):
    """One action a role may take; routes ask for a permission, never for a role."""

    READ = "read"
    ACKNOWLEDGE_ALERTS = "acknowledge_alerts"
    RECORD_OBSERVATIONS = "record_observations"  # manual readings and side effects
    RESOLVE_ALERTS = "resolve_alerts"
    MANAGE_PATIENTS = "manage_patients"
    RUN_SESSIONS = "run_sessions"  # start, close, doses, hold overrides, waived checks
    MANAGE_USERS = "manage_users"
    MANAGE_EQUIPMENT = "manage_equipment"  # chairs and cuffs
    READ_AUDIT = "read_audit"
    EXPORT_RECORDS = "export_records"  # reports, REMS forms, FHIR and CSV of patients
    EXPORT_CLINIC = "export_clinic"  # the clinic's readings of a date range (CSV, FHIR)


_NURSE: Final = frozenset(
    {
        Permission.READ,
        Permission.ACKNOWLEDGE_ALERTS,
        Permission.RECORD_OBSERVATIONS,
        Permission.EXPORT_RECORDS,
        Permission.EXPORT_CLINIC,
    }
)

# Issue #6, "Auth and roles": nurses read everything, acknowledge and snooze alerts, add
# manual readings and side effects; clinicians also start and close sessions, record
# doses, override holds and waive checks; admins manage users, chairs and cuffs. Admins
# are not clinicians: they read everything but take no clinical action, and export no
# session's clinical record; they do export the clinic's readings of a date range (issue
# #14: "a date-range export for the clinic (CSV, FHIR) for admins").
ROLE_PERMISSIONS: Final[dict[Role, frozenset[Permission]]] = {
    Role.NURSE: _NURSE,
    Role.CLINICIAN: _NURSE
    | {Permission.RUN_SESSIONS, Permission.RESOLVE_ALERTS, Permission.MANAGE_PATIENTS},
    Role.ADMIN: frozenset(
        {
            Permission.READ,
            Permission.MANAGE_USERS,
            Permission.MANAGE_EQUIPMENT,
            Permission.READ_AUDIT,
            Permission.EXPORT_CLINIC,
        }
    ),
}


def role_may(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]


def roles_with(permission: Permission) -> list[Role]:
    """The roles holding `permission`, in declaration order (for error messages and docs)."""
    return [role for role in Role if permission in ROLE_PERMISSIONS[role]]


# A clinic shift: a tablet logged in at the start of the day stays logged in through it.
DEFAULT_TOKEN_LIFETIME: Final = timedelta(hours=12)
TOKEN_ALGORITHM: Final = "HS256"
TOKEN_ISSUER: Final = "vitalsd"
# The shortest secret HS256 should be keyed with (RFC 7518 section 3.2: at least 256 bits).
MIN_SECRET_BYTES: Final = 32


class InvalidToken(Exception):
    """A token that is malformed, badly signed, expired, or names no known role."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    username: str
    role: Role
    issued_at: datetime
    expires_at: datetime
    # The user's token version when it was issued (issue #17): logout, disable, password
    # and role changes move the user's version on, and every older token stops working.
    version: int = 0


@dataclass(frozen=True, slots=True)
class TokenIssuer:
    """Signs and checks HS256 access tokens (RFC 7519) with one secret."""

    secret: bytes
    lifetime: timedelta = DEFAULT_TOKEN_LIFETIME

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_SECRET_BYTES:
            raise ValueError(f"token secret must be at least {MIN_SECRET_BYTES} bytes")
        if self.lifetime <= timedelta(0):
            raise ValueError("token lifetime must be positive")

    def issue(self, username: str, role: Role, now: datetime, version: int = 0) -> str:
        _require_aware(now)
        claims = {
            "iss": TOKEN_ISSUER,
            "sub": username,
            "role": role.value,
            "iat": int(now.timestamp()),
            "exp": int((now + self.lifetime).timestamp()),
            "ver": version,
        }
        return jwt.encode(claims, self.secret, algorithm=TOKEN_ALGORITHM)

    def verify(self, token: str, now: datetime) -> TokenClaims:
        """The token's claims, or `InvalidToken` saying why not.

        pyjwt's own expiry check reads the wall clock; it is turned off and done here
        against `now` so that the rule is testable and the shell owns the clock.
        """
        _require_aware(now)
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=[TOKEN_ALGORITHM],
                issuer=TOKEN_ISSUER,
                options={"verify_exp": False, "verify_iat": False, "require": ["exp", "sub"]},
            )
        except jwt.InvalidTokenError as error:
            raise InvalidToken(f"invalid token: {error}") from error
        try:
            role = Role(claims["role"])
            issued_at = datetime.fromtimestamp(int(claims["iat"]), UTC)
            expires_at = datetime.fromtimestamp(int(claims["exp"]), UTC)
            username = str(claims["sub"])
            version = int(claims.get("ver", 0))
        except (KeyError, ValueError, TypeError, OverflowError, OSError) as error:
            raise InvalidToken(f"invalid token claims: {error}") from error
        if now >= expires_at:
            raise InvalidToken("token expired; log in again")
        return TokenClaims(username, role, issued_at, expires_at, version)


def new_token_secret() -> bytes:
    return secrets.token_bytes(MIN_SECRET_BYTES)


class PasswordHasher:
    """Argon2id through pwdlib (OWASP's first choice for password storage)."""

    def __init__(self) -> None:
        self._hash = PasswordHash((Argon2Hasher(),))
        # Verified against when the user does not exist, so that an unknown name costs
        # as long as a wrong password and names cannot be found by timing the login.
        self._decoy = self._hash.hash(secrets.token_urlsafe(16))

    def hash(self, password: str, username: str | None = None) -> str:
        """The hash of a new password, which must pass `vitalsd.passwords`' policy."""
        check_new_password(password, username)
        return self._hash.hash(password)

    def verify(self, password: str, password_hash: str | None) -> bool:
        if password_hash is None:
            self._hash.verify(password, self._decoy)
            return False
        try:
            return self._hash.verify(password, password_hash)
        except UnknownHashError:
            return False


TOKEN_SECRET_FILE: Final = "token-secret"


def token_issuer_for(settings: Settings) -> TokenIssuer:
    """The issuer for a daemon: the configured secret, else one kept in the data directory
    (created on first start, readable by its owner only), so tokens survive a restart."""
    if settings.token_secret is not None:
        secret = settings.token_secret.get_secret_value().encode()
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(
                f"VITALSD_TOKEN_SECRET must be at least {MIN_SECRET_BYTES} bytes; "
                "generate one with: python -c 'import secrets; print(secrets.token_hex(32))'"
            )
    else:
        secret = _stored_secret(settings.data_dir / TOKEN_SECRET_FILE)
    return TokenIssuer(secret, settings.token_lifetime)


def _stored_secret(path: Path) -> bytes:
    if path.exists():
        secret = path.read_bytes()
        if len(secret) >= MIN_SECRET_BYTES:
            return secret
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = new_token_secret()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(secret)
    return secret


def generate_password() -> str:
    """A random password for a demo user (about 96 bits)."""
    return secrets.token_urlsafe(12)


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")

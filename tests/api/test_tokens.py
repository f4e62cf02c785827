"""Access tokens and password hashes (vitalsd.auth): the pure part of auth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vitalsd.auth import (
    InvalidToken,
    PasswordHasher,
    Permission,
    TokenIssuer,
    WeakPassword,
    role_may,
)
from vitalsd.domain import Role

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
SECRET = b"s" * 32


def test_token_round_trip_names_user_and_role() -> None:
    issuer = TokenIssuer(SECRET, lifetime=timedelta(hours=1))
    claims = issuer.verify(issuer.issue("ana", Role.NURSE, NOW), NOW + timedelta(minutes=59))
    assert (claims.username, claims.role) == ("ana", Role.NURSE)
    assert claims.expires_at == NOW + timedelta(hours=1)


def test_token_is_refused_once_its_lifetime_has_passed() -> None:
    issuer = TokenIssuer(SECRET, lifetime=timedelta(hours=1))
    token = issuer.issue("ana", Role.NURSE, NOW)
    with pytest.raises(InvalidToken, match="expired"):
        issuer.verify(token, NOW + timedelta(hours=1))


def test_token_signed_with_another_secret_is_refused() -> None:
    token = TokenIssuer(b"x" * 32).issue("ana", Role.ADMIN, NOW)
    with pytest.raises(InvalidToken, match=r"(?i)signature"):
        TokenIssuer(SECRET).verify(token, NOW)


def test_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        TokenIssuer(b"short")


def test_password_hash_verifies_only_the_right_password() -> None:
    hasher = PasswordHasher()
    stored = hasher.hash("correct horse")
    assert stored.startswith("$argon2id$")
    assert hasher.verify("correct horse", stored)
    assert not hasher.verify("wrong horse", stored)


def test_unknown_user_never_verifies() -> None:
    assert not PasswordHasher().verify("anything at all", None)


def test_short_password_is_refused() -> None:
    with pytest.raises(WeakPassword):
        PasswordHasher().hash("short")


def test_nurse_acknowledges_but_does_not_dose() -> None:
    assert role_may(Role.NURSE, Permission.ACKNOWLEDGE_ALERTS)
    assert not role_may(Role.NURSE, Permission.RUN_SESSIONS)


def test_admin_manages_equipment_but_takes_no_clinical_action() -> None:
    assert role_may(Role.ADMIN, Permission.MANAGE_EQUIPMENT)
    assert not role_may(Role.ADMIN, Permission.RUN_SESSIONS)
    assert not role_may(Role.ADMIN, Permission.ACKNOWLEDGE_ALERTS)

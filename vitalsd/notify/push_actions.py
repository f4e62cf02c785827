"""Signed, short-lived tokens a push notification carries (issue #15).

A service worker holds no access token and cannot read the dashboard's CSRF cookie, yet
its notification's "Acknowledge" must act as the nurse whose device it is, and its
"shown" report must not be forgeable (a false "shown" would hold back an escalation).
So each push payload carries one token bound to (user, her token version, alert,
notification key), signed with a key derived from the daemon's token secret (never
usable as an access token: another key, another audience), valid `ACTION_TTL`.
Acknowledging spends it (`SpentActions`); reporting "shown" does not.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import jwt

# Long enough for a nurse to reach for her phone, short enough that a screenshot of a
# notification is no standing credential; a high alert re-notifies (with a new token)
# every 2 minutes anyway.
ACTION_TTL: Final = timedelta(minutes=15)
AUDIENCE: Final = "vitalsd:push-action"
ALGORITHM: Final = "HS256"
# At most this many spent tokens remembered (they expire after ACTION_TTL).
MAX_SPENT: Final = 100_000


class InvalidAction(ValueError):
    """The token is not ours, expired, or already used; the message says which."""


def action_key(token_secret: bytes) -> bytes:
    """The signing key of push actions, derived from (never equal to) the token secret."""
    return hmac.new(token_secret, b"vitalsd push action tokens", hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class PushAction:
    username: str
    token_version: int
    alert_id: int
    key: str  # the notification's idempotency key (its receipt)
    expires_at: datetime
    nonce: str


def issue(
    token_secret: bytes,
    *,
    username: str,
    token_version: int,
    alert_id: int,
    key: str,
    now: datetime,
    ttl: timedelta = ACTION_TTL,
) -> str:
    expires_at = now + ttl
    claims = {
        "aud": AUDIENCE,
        "sub": username,
        "ver": token_version,
        "alert": alert_id,
        "key": key,
        "exp": int(expires_at.timestamp()),
        "jti": secrets.token_urlsafe(12),
    }
    return jwt.encode(claims, action_key(token_secret), algorithm=ALGORITHM)


def verify(token_secret: bytes, token: str, now: datetime) -> PushAction:
    try:
        claims = jwt.decode(
            token,
            action_key(token_secret),
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            options={"verify_exp": False, "require": ["exp", "sub", "alert", "key", "jti"]},
        )
        action = PushAction(
            username=str(claims["sub"]),
            token_version=int(claims.get("ver", 0)),
            alert_id=int(claims["alert"]),
            key=str(claims["key"]),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
            nonce=str(claims["jti"]),
        )
    except (jwt.InvalidTokenError, KeyError, ValueError, TypeError, OverflowError) as error:
        raise InvalidAction(f"invalid push action token: {error}") from None
    if now >= action.expires_at:
        raise InvalidAction("this notification's action expired: open the dashboard")
    return action


class SpentActions:
    """Tokens already used to acknowledge, until they expire (one process's memory: a
    replay on another node acknowledges an alert at most once more, which the alert's
    own state machine refuses unless it was raised again)."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._spent: dict[str, datetime] = {}

    def spend(self, action: PushAction) -> None:
        now = self._clock()
        self._spent = {n: at for n, at in self._spent.items() if at > now}
        if action.nonce in self._spent:
            raise InvalidAction("this notification's action was used already")
        if len(self._spent) >= MAX_SPENT:
            self._spent.pop(next(iter(self._spent)))
        self._spent[action.nonce] = action.expires_at

"""One-time tickets for `/ws` (issue #17, finding 3): a client signed in by header or
cookie asks `POST /api/auth/ws-ticket` and connects to `/ws?ticket=...` within
`TICKET_TTL`. A ticket works once and briefly, so a URL that reaches a log or a proxy's
history is no credential."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

TICKET_TTL: Final = timedelta(seconds=30)
# At most this many outstanding tickets (a client asking in a loop cannot grow memory).
MAX_TICKETS: Final = 10_000


@dataclass(frozen=True, slots=True)
class Ticket:
    token: str  # the access token it stands for: checked again (revocation) on use
    expires_at: datetime


class TicketBook:
    def __init__(self, clock: Callable[[], datetime], ttl: timedelta = TICKET_TTL) -> None:
        self._clock = clock
        self._ttl = ttl
        self._tickets: dict[str, Ticket] = {}

    def issue(self, token: str) -> tuple[str, datetime]:
        now = self._clock()
        self._tickets = {k: t for k, t in self._tickets.items() if t.expires_at > now}
        if len(self._tickets) >= MAX_TICKETS:
            self._tickets.pop(next(iter(self._tickets)))
        ticket = secrets.token_urlsafe(32)
        expires_at = now + self._ttl
        self._tickets[ticket] = Ticket(token, expires_at)
        return ticket, expires_at

    def redeem(self, ticket: str) -> str | None:
        """The access token a ticket stands for, once, before it expires; else None."""
        found = self._tickets.pop(ticket, None)
        if found is None or found.expires_at <= self._clock():
            return None
        return found.token

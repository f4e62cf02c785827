"""Login throttling per client address and per username (issue #17, finding 4), with the
`limits` library's moving windows in this process's memory.

Every attempt counts against its address (a password-spraying client is slowed whatever
names it tries); every failure counts against the name tried (a guessing attack on one
account from many addresses). Over either limit, the login answers 429 with
`Retry-After` before any password is hashed, so a flood costs no Argon2 work.
"""

from __future__ import annotations

import math
import time
from typing import Final

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

NAMESPACE: Final = "login"


class LoginThrottle:
    def __init__(self, per_address: str, failures_per_user: str) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._per_address: RateLimitItem = parse(per_address)
        self._per_user: RateLimitItem = parse(failures_per_user)

    def retry_after(self, username: str, address: str) -> int | None:
        """Seconds until a login from `address` for `username` may be tried; None: now."""
        waits = []
        for item, key in ((self._per_address, address), (self._per_user, username.casefold())):
            if not self._limiter.test(item, NAMESPACE, key):
                reset = self._limiter.get_window_stats(item, NAMESPACE, key).reset_time
                waits.append(max(1, math.ceil(reset - time.time())))
        return max(waits) if waits else None

    def attempted(self, address: str) -> None:
        self._limiter.hit(self._per_address, NAMESPACE, address)

    def failed(self, username: str) -> None:
        self._limiter.hit(self._per_user, NAMESPACE, username.casefold())

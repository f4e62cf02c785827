"""Simulated time: real (monotonic) time scaled by a speed factor.

The simulator's shell reads time only through a `SimClock`; the physiology model and the
cuff's pure parts take `now` as an argument. `--speed 60` runs a two-hour session in two
minutes (issue #3, "Cuff behaviours").
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class SimClock:
    """Maps real elapsed time to simulated time: `now() = start + elapsed * speed`.

    `start` is the simulated instant the clock reads when it is made (default: the real
    UTC time then), `monotonic` the real clock it scales (injectable for tests).
    """

    def __init__(
        self,
        speed: float = 1.0,
        *,
        start: datetime | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(speed, bool) or not isinstance(speed, int | float):
            raise ValueError(f"speed must be a number, got {speed!r}")
        if not math.isfinite(speed) or speed <= 0:
            raise ValueError(f"speed must be a finite number above 0, got {speed!r}")
        if start is not None and start.utcoffset() is None:
            raise ValueError("start must be a timezone-aware datetime")
        self.speed = float(speed)
        self._monotonic = monotonic
        self._real_start = monotonic()
        self.start = (start or datetime.now(UTC)).astimezone(UTC)

    def now(self) -> datetime:
        """The simulated time, tz-aware UTC."""
        elapsed = (self._monotonic() - self._real_start) * self.speed
        return self.start + timedelta(seconds=elapsed)

    def real_seconds(self, duration: timedelta) -> float:
        """How many real seconds a simulated duration takes at this speed."""
        return max(0.0, duration.total_seconds() / self.speed)

    async def sleep(self, duration: timedelta) -> None:
        """Wait for a simulated duration."""
        await asyncio.sleep(self.real_seconds(duration))

    async def sleep_until(self, when: datetime) -> None:
        """Wait until the simulated clock reads `when` (returns at once if it has passed)."""
        await self.sleep(when - self.now())

    def __repr__(self) -> str:
        return f"SimClock(speed={self.speed:g}, now={self.now().isoformat()})"

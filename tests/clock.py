"""The tests' clocks, one of each kind for every suite: `FakeClock` moves only when
told (the clinic's, the tokens' and the app's time in a test); `RunningClock` is real
time passing from a settable point, for a deadline that must arrive by itself."""

from __future__ import annotations

import time
from datetime import datetime, timedelta


class FakeClock:
    """A clock that moves only when told: `advance(5)` is five minutes on,
    `advance(seconds=30)` thirty seconds."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: float = 0, **delta: float) -> datetime:
        self.now += timedelta(minutes=minutes, **delta)
        return self.now


class RunningClock:
    """Real time passing from a settable point."""

    def __init__(self, start: datetime) -> None:
        self.base = start
        self.started = time.monotonic()

    def __call__(self) -> datetime:
        return self.base + timedelta(seconds=time.monotonic() - self.started)

    def set(self, moment: datetime) -> None:
        self.base, self.started = moment, time.monotonic()

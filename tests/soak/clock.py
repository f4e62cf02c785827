"""One simulated clock for every process of a soak run: the simulator's cuffs and each
incarnation of the daemon read the same simulated time, restarts included."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from simulators.clock import SimClock


def shared_clock(speed: float, epoch_real: float, epoch_sim: datetime) -> SimClock:
    """A `SimClock` reading `epoch_sim` at wall-clock time `epoch_real` (`time.time()`),
    running `speed` times faster than real time from there."""
    elapsed = (time.time() - epoch_real) * speed
    return SimClock(speed, start=epoch_sim + timedelta(seconds=elapsed))

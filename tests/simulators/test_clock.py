"""The simulated clock: real elapsed time scaled by the speed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from simulators.clock import SimClock

START = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)


class FakeMonotonic:
    """A real-time source the test moves by hand."""

    def __init__(self) -> None:
        self.value = 100.0

    def __call__(self) -> float:
        return self.value


def test_simulated_time_runs_speed_times_faster_than_real_time() -> None:
    real = FakeMonotonic()
    clock = SimClock(60, start=START, monotonic=real)
    real.value += 120  # two real minutes
    assert clock.now() == START + timedelta(hours=2)


def test_a_simulated_duration_takes_duration_over_speed_real_seconds() -> None:
    clock = SimClock(60, start=START)
    assert clock.real_seconds(timedelta(minutes=2)) == 2.0


@pytest.mark.parametrize("speed", [0, -1, float("inf"), float("nan")])
def test_speed_must_be_a_finite_positive_number(speed: float) -> None:
    with pytest.raises(ValueError, match="speed must be a finite number above 0"):
        SimClock(speed)


def test_start_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        SimClock(1, start=datetime(2025, 3, 4, 9, 0))

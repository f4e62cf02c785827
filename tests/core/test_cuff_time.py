"""The receive-time rule for cuff clocks (issue #13 finding 4, DESIGN.md "Time")."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.core.clinic_time import at
from vitalsd.cuff_time import file_live_reading, file_stored_record

TOLERANCE = timedelta(minutes=2)


@pytest.mark.parametrize(
    ("stamp", "filed", "clock_off"),
    [
        (50, 50, False),
        (48, 48, False),  # 2 minutes off: within the tolerance
        (52, 52, False),
        (40, 50, True),  # finding 4: 10 minutes slow
        (70, 50, True),  # finding 4: 20 minutes fast
        (47.9, 50, True),
    ],
)
def test_a_live_reading_off_the_receive_time_is_filed_at_the_receive_time(
    stamp: float, filed: float, clock_off: bool
) -> None:
    result = file_live_reading(at(stamp), at(50), TOLERANCE)
    assert (result.at, result.clock_off, result.cuff_stamp) == (at(filed), clock_off, at(stamp))


def test_a_stored_record_is_shifted_by_the_offset_measured_at_connection() -> None:
    # The cuff's clock runs 20 minutes fast; a record stamped 30 was taken at 10.
    result = file_stored_record(at(30), timedelta(minutes=20), at(50))
    assert (result.at, result.clock_off) == (at(10), True)


def test_a_stored_record_never_comes_from_the_future() -> None:
    assert file_stored_record(at(90), None, at(50)).at == at(50)
    assert file_stored_record(at(40), None, at(50)).at == at(40)

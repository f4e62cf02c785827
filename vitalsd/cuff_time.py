"""Which time a live cuff reading is filed under (DESIGN.md "Safety rules": "Time").

Pure. Cuffs without the Current Time service, or after a battery change, send stamps
minutes or hours off. A live reading (received as it is taken) whose stamp is further
off the receive time than the tolerance is filed at the receive time and flagged
`cuff_clock_off`, keeping the cuff's own stamp; a stored record is shifted by the offset
measured when the cuff connected. Either way the reading belongs to the chair's open
session, never to an earlier patient's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class FiledTime:
    """The time the rules use (`at`) and whether the cuff's clock was off (`clock_off`);
    `cuff_stamp` is what the cuff said, kept for the record."""

    at: datetime
    cuff_stamp: datetime
    clock_off: bool

    @property
    def offset(self) -> timedelta:
        return self.cuff_stamp - self.at


def file_live_reading(
    cuff_stamp: datetime, received_at: datetime, tolerance: timedelta
) -> FiledTime:
    """A live reading is filed at its cuff's stamp when the stamp is within the tolerance
    of the receive time; otherwise at the receive time, flagged."""
    if abs(cuff_stamp - received_at) > tolerance:
        return FiledTime(received_at, cuff_stamp, clock_off=True)
    return FiledTime(cuff_stamp, cuff_stamp, clock_off=False)


def file_stored_record(
    cuff_stamp: datetime, clock_offset: timedelta | None, received_at: datetime
) -> FiledTime:
    """A record the cuff stored while away is shifted by the offset measured at connection
    (cuff clock minus ours); with no offset known it keeps its stamp, but never later than
    its arrival (a record cannot come from the future)."""
    if clock_offset is None:
        at = min(cuff_stamp, received_at)
        return FiledTime(at, cuff_stamp, clock_off=at != cuff_stamp)
    at = min(cuff_stamp - clock_offset, received_at)
    return FiledTime(at, cuff_stamp, clock_off=clock_offset != timedelta(0))

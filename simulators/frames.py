"""What a simulated cuff puts on the air for one reading: pure, encoded by `devices.bps`.

Spec-conforming frames come straight from the shared codec. A quirk (a real cuff model
that breaks the spec) is applied to the codec's bytes afterwards, so the deviation is
stated in one place, byte by byte, and nothing here re-implements the codec.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Final

from devices.bps import (
    MMHG_PER_KPA,
    BloodPressureMeasurement,
    BloodPressureMeasurementFlags,
    MeasurementStatus,
    PressureUnit,
)
from simulators.physiology import Reading


class Quirk(StrEnum):
    """Known off-spec cuff families the simulator can imitate."""

    # Beurer BM85 family (users' reports, DESIGN.md "Real cuffs"): sets reserved flag
    # bit 6, leaves the User ID flag clear but still sends the user byte, and sends
    # pulse rate and measurement status big-endian.
    BEURER_BM85 = "beurer-bm85"


BEURER_RESERVED_FLAG: Final = 0x40
# The user the Beurer family sends when the cuff's user button was never pressed.
BEURER_DEFAULT_USER: Final = 1


def _in_unit(value_mmhg: float, unit: PressureUnit) -> float:
    """Whole mmHg, or kPa to one decimal (what an SFLOAT carries exactly)."""
    if unit is PressureUnit.KPA:
        return round(value_mmhg / MMHG_PER_KPA, 1)
    return value_mmhg


def measurement_for(
    reading: Reading,
    *,
    timestamp: datetime | None,
    unit: PressureUnit = PressureUnit.MMHG,
    user_id: int | None = None,
    quirk: Quirk | None = None,
) -> BloodPressureMeasurement:
    """The Blood Pressure Measurement a cuff reports for `reading`.

    `timestamp` is the cuff's own naive wall clock (seconds are dropped). The status
    field is always sent (zero when nothing was detected): an error frame therefore
    carries NaN pressures and pulse and no status bits, as real cuffs send it.
    """
    if quirk is Quirk.BEURER_BM85 and user_id is None:
        user_id = BEURER_DEFAULT_USER
    return BloodPressureMeasurement(
        unit=unit,
        systolic=_in_unit(reading.systolic, unit),
        diastolic=_in_unit(reading.diastolic, unit),
        mean_arterial_pressure=_in_unit(reading.mean_arterial_pressure, unit),
        timestamp=None if timestamp is None else timestamp.replace(microsecond=0),
        pulse_rate=reading.pulse_rate,
        user_id=user_id,
        status=MeasurementStatus(reading.status),
    )


def measurement_payload(measurement: BloodPressureMeasurement, quirk: Quirk | None = None) -> bytes:
    """The 0x2A35 value bytes: the codec's encoding, then the quirk's deviation if any."""
    if quirk is Quirk.BEURER_BM85:
        return beurer_bm85_frame(measurement)
    return bytes(measurement)


def beurer_bm85_frame(measurement: BloodPressureMeasurement) -> bytes:
    """Re-shape the codec's spec frame the way a Beurer BM85 sends it.

    Field order stays the spec's (flags, compound value, time stamp, pulse rate, user,
    status); only the flag bits and the byte order of pulse rate and status change.
    """
    if measurement.pulse_rate is None or measurement.user_id is None or measurement.status is None:
        raise ValueError("a Beurer BM85 frame always carries pulse rate, a user byte and status")
    frame = bytearray(bytes(measurement))
    flags = frame[0]
    user_flag = int(BloodPressureMeasurementFlags.USER_ID_PRESENT)
    frame[0] = (flags | BEURER_RESERVED_FLAG) & ~user_flag & 0xFF
    offset = 1 + 6  # flags, then systolic, diastolic, MAP (SFLOAT each)
    if flags & BloodPressureMeasurementFlags.TIME_STAMP_PRESENT:
        offset += 7  # Date Time (GSS 3.70)
    frame[offset : offset + 2] = frame[offset : offset + 2][::-1]  # pulse rate
    offset += 2 + 1  # pulse rate, then the user byte that stays
    frame[offset : offset + 2] = frame[offset : offset + 2][::-1]  # measurement status
    return bytes(frame)

"""The Bluetooth side's hand-over to the clinic: a Blood Pressure Measurement (the GATT
codec's class) as the domain's `CuffReading`, converted once, where the cuff events
become clinic calls (the daemon, the benches, the tests), never inside the clinic."""

from __future__ import annotations

from datetime import datetime

from devices.bps import BloodPressureMeasurement, PulseRateRange
from vitalsd.domain import CuffReading, ReadingFlag


def reading_flags(measurement: BloodPressureMeasurement) -> frozenset[ReadingFlag]:
    """The Measurement Status bits (GSS 3.31.2.6) as reading flags."""
    status = measurement.status
    if status is None:
        return frozenset()
    flags: set[ReadingFlag] = set()
    if status.body_movement:
        flags.add(ReadingFlag.BODY_MOVEMENT)
    if status.cuff_too_loose:
        flags.add(ReadingFlag.CUFF_TOO_LOOSE)
    if status.irregular_pulse:
        flags.add(ReadingFlag.IRREGULAR_PULSE)
    if status.pulse_rate_range is not PulseRateRange.WITHIN_RANGE:
        flags.add(ReadingFlag.PULSE_RATE_RANGE)
    if status.improper_position:
        flags.add(ReadingFlag.IMPROPER_POSITION)
    return frozenset(flags)


def cuff_reading(
    measurement: BloodPressureMeasurement,
    *,
    live: bool = False,
    received_at: datetime | None = None,
    clock_checked: bool = True,
) -> CuffReading:
    """The measurement in mmHg (kPa converted by the codec, once) with its flags, and
    what the link knows of its time (`CuffReading`)."""
    systolic, diastolic, map_value = measurement.pressures_mmhg
    return CuffReading(
        systolic=systolic,
        diastolic=diastolic,
        mean_arterial_pressure=map_value,
        pulse_rate=measurement.pulse_rate,
        user_id=measurement.user_id,
        flags=reading_flags(measurement),
        error_frame=measurement.is_error_frame,
        live=live,
        received_at=received_at,
        clock_checked=clock_checked,
    )

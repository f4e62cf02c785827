"""The Bluetooth side's hand-over (`vitalsd.cuff_readings`): a Blood Pressure
Measurement becomes the domain's `CuffReading`, in mmHg, its status bits as flags."""

from __future__ import annotations

import math

import pytest

from devices.bps import BloodPressureMeasurement, MeasurementStatus, PressureUnit
from vitalsd.cuff_readings import cuff_reading
from vitalsd.domain import ReadingFlag

NAN = float("nan")


def test_kpa_values_arrive_in_mmhg_with_pulse_and_user() -> None:
    measured = BloodPressureMeasurement(
        PressureUnit.KPA, 16.0, 10.6, 12.4, pulse_rate=72.0, user_id=2
    )
    reading = cuff_reading(measured)
    assert (reading.systolic, reading.diastolic, reading.pulse_rate, reading.user_id) == (
        pytest.approx(120.0, abs=0.1),
        pytest.approx(79.5, abs=0.1),
        72.0,
        2,
    )
    assert (reading.flags, reading.error_frame) == (frozenset(), False)


@pytest.mark.parametrize(
    ("status", "flag"),
    [
        (MeasurementStatus.BODY_MOVEMENT_DETECTED, ReadingFlag.BODY_MOVEMENT),
        (MeasurementStatus.CUFF_TOO_LOOSE, ReadingFlag.CUFF_TOO_LOOSE),
        (MeasurementStatus.IRREGULAR_PULSE_DETECTED, ReadingFlag.IRREGULAR_PULSE),
        (MeasurementStatus.PULSE_RATE_EXCEEDS_UPPER_LIMIT, ReadingFlag.PULSE_RATE_RANGE),
        (MeasurementStatus.PULSE_RATE_LESS_THAN_LOWER_LIMIT, ReadingFlag.PULSE_RATE_RANGE),
        (MeasurementStatus.IMPROPER_MEASUREMENT_POSITION, ReadingFlag.IMPROPER_POSITION),
    ],
)
def test_each_status_bit_becomes_its_reading_flag(
    status: MeasurementStatus, flag: ReadingFlag
) -> None:
    measured = BloodPressureMeasurement(PressureUnit.MMHG, 120, 80, 93, status=status)
    assert cuff_reading(measured).flags == {flag}


def test_an_error_frame_is_said_so_and_keeps_its_nan_values_for_the_clinic_to_judge() -> None:
    reading = cuff_reading(BloodPressureMeasurement(PressureUnit.MMHG, NAN, NAN, NAN))
    assert reading.error_frame
    assert math.isnan(reading.systolic)

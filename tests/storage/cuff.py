"""Cuff measurements for the storage tests, built with the real codec."""

from __future__ import annotations

import math

from devices.bps import BloodPressureMeasurement, MeasurementStatus, PressureUnit


def measurement(
    systolic: float = 122,
    diastolic: float = 78,
    pulse: float | None = 72,
    status: MeasurementStatus | None = None,
    user_id: int | None = 1,
) -> BloodPressureMeasurement:
    mean = round(diastolic + (systolic - diastolic) / 3)
    return BloodPressureMeasurement(
        PressureUnit.MMHG,
        systolic,
        diastolic,
        mean,
        pulse_rate=pulse,
        user_id=user_id,
        status=status,
    )


def error_frame() -> BloodPressureMeasurement:
    return BloodPressureMeasurement(PressureUnit.MMHG, math.nan, math.nan, math.nan)

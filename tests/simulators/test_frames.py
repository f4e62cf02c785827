"""What goes on the air for one reading: the codec's frame, and the Beurer BM85 quirk."""

from __future__ import annotations

import math
from datetime import datetime

import pytest

from devices.bps import (
    BloodPressureMeasurement,
    MalformedPayload,
    MeasurementStatus,
    PressureUnit,
)
from simulators.frames import Quirk, measurement_for, measurement_payload
from simulators.physiology import MeasurementProblem, Reading

STAMP = datetime(2025, 3, 4, 9, 30, 15)
READING = Reading(
    systolic=120.0,
    diastolic=80.0,
    mean_arterial_pressure=93.0,
    pulse_rate=72.0,
    status=MeasurementStatus.BODY_MOVEMENT_DETECTED,
    problem=MeasurementProblem.BODY_MOVEMENT,
)


def test_a_spec_cuff_sends_the_codec_frame_that_decodes_to_its_reading() -> None:
    measurement = measurement_for(READING, timestamp=STAMP)
    decoded = BloodPressureMeasurement.from_bytes(measurement_payload(measurement))
    assert decoded == measurement
    assert (decoded.systolic, decoded.diastolic, decoded.pulse_rate) == (120.0, 80.0, 72.0)
    assert decoded.status == MeasurementStatus.BODY_MOVEMENT_DETECTED
    assert decoded.timestamp == STAMP


def test_a_kpa_cuff_sends_pressures_in_kpa_to_one_decimal() -> None:
    measurement = measurement_for(READING, timestamp=STAMP, unit=PressureUnit.KPA)
    decoded = BloodPressureMeasurement.from_bytes(measurement_payload(measurement))
    assert decoded.unit is PressureUnit.KPA
    assert (decoded.systolic, decoded.diastolic) == (16.0, 10.7)


def test_beurer_bm85_frame_bytes_are_as_the_cuff_sends_them() -> None:
    measurement = measurement_for(READING, timestamp=STAMP, quirk=Quirk.BEURER_BM85)
    frame = measurement_payload(measurement, Quirk.BEURER_BM85)
    expected = bytes.fromhex(
        "56"  # flags: time stamp, pulse, status (0x16) + reserved bit 6; no user-id flag
        "7800"  # systolic 120 (SFLOAT, little-endian as the spec says)
        "5000"  # diastolic 80
        "5d00"  # MAP 93
        "e907030409"
        "1e0f"  # 2025-03-04 09:30:15
        "0048"  # pulse 72, big-endian
        "01"  # user 1, sent although its flag is clear
        "0001"  # status: body movement, big-endian
    )
    assert frame == expected


def test_the_spec_codec_refuses_a_beurer_frame_for_its_reserved_flag() -> None:
    measurement = measurement_for(READING, timestamp=STAMP, quirk=Quirk.BEURER_BM85)
    with pytest.raises(MalformedPayload, match="reserved"):
        BloodPressureMeasurement.from_bytes(measurement_payload(measurement, Quirk.BEURER_BM85))


def test_an_error_frame_carries_nan_pressures_and_pulse_and_no_status_bits() -> None:
    failed = Reading(
        math.nan,
        math.nan,
        math.nan,
        math.nan,
        MeasurementStatus(0),
        MeasurementProblem.ERROR_FRAME,
    )
    payload = measurement_payload(measurement_for(failed, timestamp=STAMP))
    decoded = BloodPressureMeasurement.from_bytes(payload)
    assert decoded.is_error_frame
    assert decoded.status == MeasurementStatus(0)
    assert payload[1:7] == bytes.fromhex("ff07ff07ff07")  # SFLOAT NaN x3

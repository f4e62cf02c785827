"""Per-model quirks: the Beurer BM85 family's spec-breaking frames, and nobody else's."""

from __future__ import annotations

from datetime import datetime

import pytest

from devices.bps import (
    BloodPressureMeasurement,
    MalformedPayload,
    MeasurementStatus,
    PressureUnit,
)
from devices.quirks import (
    BEURER_BM85,
    NO_QUIRKS,
    decode_intermediate_cuff_pressure,
    decode_measurement,
    quirks_for,
)

READING = BloodPressureMeasurement(
    PressureUnit.MMHG,
    128.0,
    82.0,
    97.0,
    timestamp=datetime(2025, 3, 14, 9, 26, 53),
    pulse_rate=72.0,
    user_id=1,
    status=MeasurementStatus.IRREGULAR_PULSE_DETECTED,
)

# What a BM85 sends for READING: flags 0x56 = reserved bit 6 | status | pulse | time
# stamp, no User ID flag; SFLOAT 128, 82, 97 little-endian; Date Time; pulse 72 as
# 0x0048 big-endian; the user byte; status 0x0004 big-endian.
BM85_FRAME = bytes.fromhex("56 8000 5200 6100 e907030e091a35 0048 01 0004")


def test_bm85_frame_decodes_to_the_reading_it_stands_for() -> None:
    decoded = decode_measurement(BM85_FRAME, manufacturer="Beurer", model="BM85")
    assert decoded == READING


def test_bm85_pulse_rate_is_read_big_endian() -> None:
    decoded = decode_measurement(BM85_FRAME, manufacturer="Beurer", model="BM85")
    assert decoded.pulse_rate == 72.0


def test_bm85_status_is_read_big_endian() -> None:
    decoded = decode_measurement(BM85_FRAME, manufacturer="Beurer", model="BM85")
    assert decoded.status == MeasurementStatus.IRREGULAR_PULSE_DETECTED


def test_bm85_user_byte_without_its_flag_becomes_the_user_id() -> None:
    decoded = decode_measurement(BM85_FRAME, manufacturer="Beurer", model="BM85")
    assert decoded.user_id == 1


def test_bm85_frame_without_pulse_or_status_keeps_the_user_byte() -> None:
    frame = bytes.fromhex("40 8000 5200 6100 02")
    decoded = decode_measurement(frame, manufacturer="Beurer", model="BM85")
    assert (decoded.systolic, decoded.pulse_rate, decoded.user_id) == (128.0, None, 2)


def test_bm85_family_matches_by_prefix_and_ignores_case() -> None:
    assert quirks_for("Beurer GmbH", "BM85 BT") is BEURER_BM85
    assert quirks_for("BEURER", "bm85") is BEURER_BM85


def test_other_beurer_models_are_standard() -> None:
    assert quirks_for("Beurer", "BM54") is NO_QUIRKS


def test_unknown_device_information_means_no_quirks() -> None:
    assert quirks_for(None, None) is NO_QUIRKS
    assert quirks_for("Beurer", None) is NO_QUIRKS


def test_standard_cuff_frame_decodes_to_spec() -> None:
    decoded = decode_measurement(bytes(READING), manufacturer="Omron", model="BP7000")
    assert decoded == READING


def test_bm85_frame_from_a_standard_cuff_is_refused_not_guessed() -> None:
    with pytest.raises(MalformedPayload, match="reserved bits"):
        decode_measurement(BM85_FRAME, manufacturer="Omron", model="BP7000")


def test_standard_frame_is_not_swapped_for_a_standard_cuff_with_a_user_flag() -> None:
    decoded = decode_measurement(bytes(READING), manufacturer=None, model=None)
    assert (decoded.pulse_rate, decoded.status) == (
        72.0,
        MeasurementStatus.IRREGULAR_PULSE_DETECTED,
    )


def test_truncated_bm85_frame_is_a_malformed_payload() -> None:
    with pytest.raises(MalformedPayload):
        decode_measurement(BM85_FRAME[:10], manufacturer="Beurer", model="BM85")


def test_bm85_intermediate_cuff_pressure_gets_the_same_repair() -> None:
    # 0x40 reserved bit | nothing else; cuff pressure 150 mmHg; NaN, NaN; user byte 1.
    frame = bytes.fromhex("40 9600 ff07 ff07 01")
    pressure = decode_intermediate_cuff_pressure(frame, manufacturer="Beurer", model="BM85")
    assert pressure.cuff_pressure_mmhg == 150.0

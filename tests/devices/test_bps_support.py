"""Blood Pressure Feature, Date Time, Current Time and Battery Level vectors."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from devices.bps import (
    AdjustReason,
    BatteryLevel,
    BloodPressureFeature,
    CurrentTime,
    DateTime,
    MalformedPayload,
)

# --- Blood Pressure Feature (GSS 3.30) --------------------------------------------


def test_feature_bits_follow_the_spec_table() -> None:
    assert [int(f) for f in BloodPressureFeature] == [1 << bit for bit in range(9)]


def test_feature_decodes_16_bit_little_endian() -> None:
    feature = BloodPressureFeature.from_bytes(b"\x21\x01")
    assert feature == (
        BloodPressureFeature.BODY_MOVEMENT_DETECTION
        | BloodPressureFeature.MULTIPLE_BOND
        | BloodPressureFeature.USER_FACING_TIME
    )


def test_feature_encodes_with_bytes() -> None:
    feature = BloodPressureFeature.CUFF_FIT_DETECTION | BloodPressureFeature.E2E_CRC
    assert bytes(feature) == b"\x42\x00"


def test_feature_keeps_reserved_bits() -> None:
    assert bytes(BloodPressureFeature.from_bytes(b"\x00\x80")) == b"\x00\x80"


def test_feature_of_one_byte_is_malformed() -> None:
    with pytest.raises(MalformedPayload, match="Blood Pressure Feature: features at byte offset 0"):
        BloodPressureFeature.from_bytes(b"\x01")


# --- Date Time (GSS 3.70) ---------------------------------------------------------


def test_date_time_decodes_seven_bytes() -> None:
    value = DateTime.from_bytes(bytes.fromhex("e8 07 03 0f 0a 1e 2d"))
    assert value.datetime == datetime(2024, 3, 15, 10, 30, 45)


@pytest.mark.parametrize(
    "payload",
    [
        bytes.fromhex("00 00 03 0f 0a 1e 2d"),
        bytes.fromhex("e8 07 00 0f 0a 1e 2d"),
        bytes.fromhex("e8 07 03 00 0a 1e 2d"),
        bytes(7),
    ],
)
def test_date_time_with_an_unknown_date_field_has_no_datetime(payload: bytes) -> None:
    value = DateTime.from_bytes(payload)
    assert value.datetime is None
    assert bytes(value) == payload


def test_date_time_hour_24_is_malformed() -> None:
    with pytest.raises(MalformedPayload, match="Date Time: date time at byte offset 0: hours"):
        DateTime.from_bytes(bytes.fromhex("e8 07 03 0f 18 1e 2d"))


def test_date_time_year_before_1582_is_malformed() -> None:
    with pytest.raises(MalformedPayload, match="year"):
        DateTime.from_bytes(bytes.fromhex("e7 03 03 0f 0a 1e 2d"))  # 999


def test_date_time_of_eight_bytes_is_malformed() -> None:
    with pytest.raises(MalformedPayload, match="end of value at byte offset 7"):
        DateTime.from_bytes(bytes.fromhex("e8 07 03 0f 0a 1e 2d 00"))


# --- Current Time (CTS, GSS 3.62) -------------------------------------------------


def test_current_time_decodes_exact_time_256_and_adjust_reason() -> None:
    value = CurrentTime.from_bytes(bytes.fromhex("e8 07 03 0f 0a 1e 2d 05 80 01"))
    assert value == CurrentTime(
        DateTime(2024, 3, 15, 10, 30, 45), 5, 128, AdjustReason.MANUAL_TIME_UPDATE
    )
    assert value.datetime == datetime(2024, 3, 15, 10, 30, 45, 500000)


def test_current_time_from_datetime_fills_day_of_week_and_fractions() -> None:
    value = CurrentTime.from_datetime(
        datetime(2024, 3, 17, 8, 0, 0, 250000), AdjustReason.EXTERNAL_REFERENCE_TIME_UPDATE
    )
    assert bytes(value) == bytes.fromhex("e8 07 03 11 08 00 00 07 40 02")  # Sunday = 7


def test_current_time_from_an_aware_datetime_uses_its_wall_clock() -> None:
    clinic = timezone(timedelta(hours=-5))
    value = CurrentTime.from_datetime(datetime(2024, 3, 15, 9, 0, tzinfo=clinic))
    assert value.datetime == datetime(2024, 3, 15, 9, 0)


def test_current_time_day_of_week_8_is_malformed() -> None:
    with pytest.raises(MalformedPayload, match="day of week at byte offset 7"):
        CurrentTime.from_bytes(bytes.fromhex("e8 07 03 0f 0a 1e 2d 08 00 00"))


def test_current_time_of_nine_bytes_is_malformed() -> None:
    with pytest.raises(MalformedPayload, match="adjust reason at byte offset 9"):
        CurrentTime.from_bytes(bytes.fromhex("e8 07 03 0f 0a 1e 2d 05 80"))


# --- Battery Level (GSS 3.27) -----------------------------------------------------


def test_battery_level_is_one_byte_percent() -> None:
    assert BatteryLevel.from_bytes(b"\x64") == BatteryLevel(100)
    assert bytes(BatteryLevel(7)) == b"\x07"


def test_battery_level_above_100_is_malformed() -> None:
    with pytest.raises(MalformedPayload, match="Battery Level: level at byte offset 0"):
        BatteryLevel.from_bytes(b"\x65")


def test_battery_level_constructor_rejects_negative_percent() -> None:
    with pytest.raises(ValueError, match="level"):
        BatteryLevel(-1)

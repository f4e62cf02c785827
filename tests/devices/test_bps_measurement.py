"""Blood Pressure Measurement (GSS 3.31) and Intermediate Cuff Pressure (GSS 3.125) vectors.

Byte strings are written by hand from the spec's field table: flags (uint8), systolic,
diastolic, MAP (SFLOAT each), time stamp (Date Time, 7 bytes), pulse rate (SFLOAT),
user id (uint8), measurement status (uint16), all little-endian.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from devices.bps import (
    MMHG_PER_KPA,
    BloodPressureMeasurement,
    IntermediateCuffPressure,
    MalformedPayload,
    MeasurementStatus,
    PressureUnit,
    PulseRateRange,
)

SYS_120_DIA_80_MAP_93 = bytes.fromhex("78 00 50 00 5d 00")
TIME_2024_03_15_10_30_00 = bytes.fromhex("e8 07 03 0f 0a 1e 00")


def test_minimal_measurement_has_only_flags_and_three_pressures_in_mmhg() -> None:
    m = BloodPressureMeasurement.from_bytes(b"\x00" + SYS_120_DIA_80_MAP_93)
    assert m == BloodPressureMeasurement(PressureUnit.MMHG, 120.0, 80.0, 93.0)


def test_flags_bit_0_selects_kpa_and_pressures_mmhg_converts() -> None:
    # 16.0 / 10.7 / 12.5 kPa as mantissa x 10^-1
    m = BloodPressureMeasurement.from_bytes(bytes.fromhex("01 a0 f0 6b f0 7d f0"))
    assert (m.unit, m.systolic, m.diastolic, m.mean_arterial_pressure) == (
        PressureUnit.KPA,
        16.0,
        10.7,
        12.5,
    )
    assert m.pressures_mmhg == (16.0 * MMHG_PER_KPA, 10.7 * MMHG_PER_KPA, 12.5 * MMHG_PER_KPA)


def test_pressures_mmhg_leaves_mmhg_values_unchanged() -> None:
    m = BloodPressureMeasurement(PressureUnit.MMHG, 121.5, 79.0, 93.2)
    assert m.pressures_mmhg == (121.5, 79.0, 93.2)


def test_flags_bit_1_adds_a_date_time_time_stamp() -> None:
    m = BloodPressureMeasurement.from_bytes(
        b"\x02" + SYS_120_DIA_80_MAP_93 + TIME_2024_03_15_10_30_00
    )
    assert m.timestamp == datetime(2024, 3, 15, 10, 30, 0)


def test_flags_bit_2_adds_pulse_rate() -> None:
    m = BloodPressureMeasurement.from_bytes(b"\x04" + SYS_120_DIA_80_MAP_93 + b"\x48\x00")
    assert m.pulse_rate == 72.0


def test_flags_bit_3_adds_user_id() -> None:
    m = BloodPressureMeasurement.from_bytes(b"\x08" + SYS_120_DIA_80_MAP_93 + b"\x02")
    assert (m.user_id, m.user_known) == (2, True)


def test_flags_bit_4_adds_measurement_status() -> None:
    m = BloodPressureMeasurement.from_bytes(b"\x10" + SYS_120_DIA_80_MAP_93 + b"\x01\x00")
    assert m.status == MeasurementStatus.BODY_MOVEMENT_DETECTED


def test_all_flags_set_places_fields_in_spec_order() -> None:
    payload = (
        b"\x1f"
        + bytes.fromhex("a0 f0 6b f0 7d f0")
        + TIME_2024_03_15_10_30_00
        + b"\x48\x00"
        + b"\x01"
        + b"\x24\x00"
    )
    assert BloodPressureMeasurement.from_bytes(payload) == BloodPressureMeasurement(
        PressureUnit.KPA,
        16.0,
        10.7,
        12.5,
        timestamp=datetime(2024, 3, 15, 10, 30),
        pulse_rate=72.0,
        user_id=1,
        status=MeasurementStatus.IRREGULAR_PULSE_DETECTED
        | MeasurementStatus.IMPROPER_MEASUREMENT_POSITION,
    )


@pytest.mark.parametrize("flags", range(0x20))
def test_every_flag_combination_encodes_to_the_same_bytes_it_decodes_from(flags: int) -> None:
    payload = bytes((flags,)) + SYS_120_DIA_80_MAP_93
    if flags & 0x01:
        # 16.1 / 10.7 / 12.5 kPa (16.0 would re-encode as 16 x 10^0)
        payload = bytes((flags,)) + bytes.fromhex("a1 f0 6b f0 7d f0")
    if flags & 0x02:
        payload += TIME_2024_03_15_10_30_00
    if flags & 0x04:
        payload += b"\x48\x00"
    if flags & 0x08:
        payload += b"\x07"
    if flags & 0x10:
        payload += b"\x05\x00"
    assert bytes(BloodPressureMeasurement.from_bytes(payload)) == payload


def test_unknown_user_0xff_is_kept_as_255_and_reported_unknown() -> None:
    m = BloodPressureMeasurement.from_bytes(b"\x08" + SYS_120_DIA_80_MAP_93 + b"\xff")
    assert (m.user_id, m.user_known) == (255, False)
    assert bytes(m)[-1] == 0xFF


def test_measurement_without_user_id_is_not_a_known_user() -> None:
    assert not BloodPressureMeasurement(PressureUnit.MMHG, 120.0, 80.0, 93.0).user_known


@pytest.mark.parametrize(
    "unknown_date",
    [
        bytes.fromhex("00 00 03 0f 0a 1e 00"),  # year 0
        bytes.fromhex("e8 07 00 0f 0a 1e 00"),  # month 0
        bytes.fromhex("e8 07 03 00 0a 1e 00"),  # day 0
    ],
)
def test_time_stamp_with_an_unknown_date_field_decodes_as_no_timestamp(
    unknown_date: bytes,
) -> None:
    m = BloodPressureMeasurement.from_bytes(b"\x02" + SYS_120_DIA_80_MAP_93 + unknown_date)
    assert m.timestamp is None


@pytest.mark.parametrize(
    ("raw", "prop"),
    [
        (0x0001, "body_movement"),
        (0x0002, "cuff_too_loose"),
        (0x0004, "irregular_pulse"),
        (0x0020, "improper_position"),
    ],
)
def test_each_status_bit_sets_only_its_own_property(raw: int, prop: str) -> None:
    status = BloodPressureMeasurement.from_bytes(
        b"\x10" + SYS_120_DIA_80_MAP_93 + raw.to_bytes(2, "little")
    ).status
    assert status is not None
    flags = ("body_movement", "cuff_too_loose", "irregular_pulse", "improper_position")
    assert {name: getattr(status, name) for name in flags} == {name: name == prop for name in flags}
    assert status.pulse_rate_range is PulseRateRange.WITHIN_RANGE


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (0x0000, PulseRateRange.WITHIN_RANGE),
        (0x0008, PulseRateRange.EXCEEDS_UPPER_LIMIT),
        (0x0010, PulseRateRange.LESS_THAN_LOWER_LIMIT),
        (0x0018, PulseRateRange.RESERVED),
    ],
)
def test_status_bits_3_and_4_are_the_two_bit_pulse_rate_range(
    raw: int, expected: PulseRateRange
) -> None:
    assert MeasurementStatus(raw).pulse_rate_range is expected


def test_reserved_status_bits_are_kept_so_the_raw_16_bits_round_trip() -> None:
    m = BloodPressureMeasurement.from_bytes(b"\x10" + SYS_120_DIA_80_MAP_93 + b"\x41\x80")
    assert m.status is not None
    assert int(m.status) == 0x8041
    assert m.status.body_movement
    assert bytes(m).endswith(b"\x41\x80")


def test_all_nan_pressures_without_status_bits_is_an_error_frame() -> None:
    m = BloodPressureMeasurement.from_bytes(b"\x10" + bytes.fromhex("ff 07 ff 07 ff 07 00 00"))
    assert m.is_error_frame


def test_all_nan_pressures_with_a_status_bit_is_not_an_error_frame() -> None:
    m = BloodPressureMeasurement.from_bytes(b"\x10" + bytes.fromhex("ff 07 ff 07 ff 07 02 00"))
    assert not m.is_error_frame


def test_a_real_reading_is_not_an_error_frame() -> None:
    assert not BloodPressureMeasurement.from_bytes(b"\x00" + SYS_120_DIA_80_MAP_93).is_error_frame


def test_nres_and_reserved_pressures_also_make_an_error_frame() -> None:
    # NRes (0x0800) and the reserved value (0x0801) are not numbers either.
    m = BloodPressureMeasurement.from_bytes(b"\x00" + bytes.fromhex("00 08 01 08 ff 07"))
    assert m.is_error_frame


def test_infinite_systolic_is_kept_as_a_reading_beyond_the_cuff_range() -> None:
    m = BloodPressureMeasurement.from_bytes(b"\x00" + bytes.fromhex("fe 07 50 00 5d 00"))
    assert m.systolic == math.inf
    assert not m.is_error_frame


# --- malformed payloads: MalformedPayload names characteristic, field and offset --------


def test_empty_payload_names_the_flags_field_at_offset_0() -> None:
    with pytest.raises(MalformedPayload, match="flags at byte offset 0") as caught:
        BloodPressureMeasurement.from_bytes(b"")
    assert caught.value.characteristic == "Blood Pressure Measurement"


def test_truncated_diastolic_names_the_field_and_offset_3() -> None:
    with pytest.raises(MalformedPayload, match="diastolic at byte offset 3") as caught:
        BloodPressureMeasurement.from_bytes(bytes.fromhex("00 78 00 50"))
    assert (caught.value.field, caught.value.offset) == ("diastolic", 3)


def test_missing_pulse_rate_announced_by_its_flag_names_offset_7() -> None:
    with pytest.raises(MalformedPayload, match="pulse rate at byte offset 7"):
        BloodPressureMeasurement.from_bytes(b"\x04" + SYS_120_DIA_80_MAP_93)


def test_reserved_flag_bits_are_refused_at_offset_0() -> None:
    with pytest.raises(MalformedPayload, match=r"flags at byte offset 0: reserved bits 0x20"):
        BloodPressureMeasurement.from_bytes(b"\x20" + SYS_120_DIA_80_MAP_93)


def test_trailing_bytes_are_refused_with_their_offset() -> None:
    # A user byte without its flag, as some cuffs send it.
    with pytest.raises(MalformedPayload, match="end of value at byte offset 7: 1 unexpected"):
        BloodPressureMeasurement.from_bytes(b"\x00" + SYS_120_DIA_80_MAP_93 + b"\x01")


def test_month_13_in_the_time_stamp_names_the_time_stamp_at_offset_7() -> None:
    bad_month = bytes.fromhex("e8 07 0d 0f 0a 1e 00")
    with pytest.raises(MalformedPayload, match="time stamp date time at byte offset 7: month"):
        BloodPressureMeasurement.from_bytes(b"\x02" + SYS_120_DIA_80_MAP_93 + bad_month)


def test_february_30_in_the_time_stamp_is_malformed() -> None:
    feb_30 = bytes.fromhex("e8 07 02 1e 0a 1e 00")
    with pytest.raises(MalformedPayload, match="time stamp date time at byte offset 7"):
        BloodPressureMeasurement.from_bytes(b"\x02" + SYS_120_DIA_80_MAP_93 + feb_30)


def test_truncated_status_names_measurement_status() -> None:
    with pytest.raises(MalformedPayload, match="measurement status at byte offset 7"):
        BloodPressureMeasurement.from_bytes(b"\x10" + SYS_120_DIA_80_MAP_93 + b"\x01")


# --- construction-time validation ---------------------------------------------------


def test_constructor_rejects_a_pressure_an_sfloat_cannot_carry() -> None:
    with pytest.raises(ValueError, match="systolic"):
        BloodPressureMeasurement(PressureUnit.MMHG, 120.123, 80.0, 93.0)


def test_constructor_rejects_an_aware_timestamp() -> None:
    with pytest.raises(ValueError, match="naive"):
        BloodPressureMeasurement(
            PressureUnit.MMHG, 120.0, 80.0, 93.0, timestamp=datetime(2024, 1, 1, tzinfo=UTC)
        )


def test_constructor_rejects_sub_second_timestamps() -> None:
    with pytest.raises(ValueError, match="whole seconds"):
        BloodPressureMeasurement(
            PressureUnit.MMHG, 120.0, 80.0, 93.0, timestamp=datetime(2024, 1, 1, 0, 0, 0, 5)
        )


def test_constructor_rejects_user_id_beyond_one_byte() -> None:
    with pytest.raises(ValueError, match="user_id"):
        BloodPressureMeasurement(PressureUnit.MMHG, 120.0, 80.0, 93.0, user_id=256)


def test_constructor_accepts_the_unit_as_its_string_value() -> None:
    m = BloodPressureMeasurement("kPa", 16.0, 10.7, 12.5)  # type: ignore[arg-type]
    assert m.unit is PressureUnit.KPA


def test_constructor_rejects_an_unknown_unit() -> None:
    with pytest.raises(ValueError, match="unit"):
        BloodPressureMeasurement("psi", 2.3, 1.5, 1.8)  # type: ignore[arg-type]


def test_constructor_turns_a_plain_int_status_into_measurement_status() -> None:
    m = BloodPressureMeasurement(PressureUnit.MMHG, 120.0, 80.0, 93.0, status=0x02)  # type: ignore[arg-type]
    assert isinstance(m.status, MeasurementStatus)
    assert m.status.cuff_too_loose


# --- Intermediate Cuff Pressure -----------------------------------------------------


def test_intermediate_cuff_pressure_sends_nan_diastolic_and_map() -> None:
    icp = IntermediateCuffPressure(PressureUnit.MMHG, 152.0)
    assert bytes(icp) == bytes.fromhex("00 98 00 ff 07 ff 07")


def test_intermediate_cuff_pressure_reads_the_systolic_field() -> None:
    icp = IntermediateCuffPressure.from_bytes(bytes.fromhex("04 98 00 ff 07 ff 07 48 00"))
    assert icp == IntermediateCuffPressure(PressureUnit.MMHG, 152.0, pulse_rate=72.0)


def test_intermediate_cuff_pressure_ignores_what_a_cuff_puts_in_diastolic_and_map() -> None:
    icp = IntermediateCuffPressure.from_bytes(bytes.fromhex("00 98 00 00 00 00 00"))
    assert icp.cuff_pressure == 152.0


def test_intermediate_cuff_pressure_in_kpa_converts_to_mmhg() -> None:
    icp = IntermediateCuffPressure.from_bytes(bytes.fromhex("01 c8 f0 ff 07 ff 07"))
    assert icp.cuff_pressure_mmhg == 20.0 * MMHG_PER_KPA


def test_intermediate_cuff_pressure_errors_name_their_own_characteristic() -> None:
    with pytest.raises(MalformedPayload, match=r"^Intermediate Cuff Pressure: systolic"):
        IntermediateCuffPressure.from_bytes(b"\x00\x98")

"""Blood Pressure Record (0x2B36) and Enhanced Blood Pressure Measurement (0x2B34) vectors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from devices import gatt
from devices.bps import (
    BloodPressureMeasurement,
    BloodPressureRecord,
    BloodPressureRecordAssembler,
    EnhancedBloodPressureMeasurement,
    EpochStart,
    MalformedPayload,
    MeasurementStatus,
    PressureUnit,
    StoredRecord,
    e2e_crc,
    segment_record,
)

BPM_120_80_93 = bytes.fromhex("00 78 00 50 00 5d 00")


# --- Enhanced Blood Pressure Measurement ----------------------------------------------


def test_enhanced_time_stamp_counts_utc_seconds_since_2000_when_bit_6_is_set() -> None:
    # 2024-03-15 10:30:00 UTC is 763,813,800 s after 2000-01-01 = 0x2D86DFA8
    m = EnhancedBloodPressureMeasurement.from_bytes(
        bytes.fromhex("42 78 00 50 00 5d 00 a8 df 86 2d")
    )
    assert m.timestamp == datetime(2024, 3, 15, 10, 30, tzinfo=UTC)
    assert m.epoch is EpochStart.YEAR_2000


def test_enhanced_time_stamp_counts_from_1900_when_bit_6_is_clear() -> None:
    # 2000-01-01 00:00:00 UTC is 3,155,673,600 s after 1900-01-01 = 0xBC17C200 (as in NTP)
    m = EnhancedBloodPressureMeasurement.from_bytes(
        bytes.fromhex("02 78 00 50 00 5d 00 00 c2 17 bc")
    )
    assert m.timestamp == datetime(2000, 1, 1, tzinfo=UTC)
    assert m.epoch is EpochStart.YEAR_1900


def test_enhanced_all_fields_in_spec_order() -> None:
    payload = bytes.fromhex(
        "7f"  # kPa, time stamp, pulse, user, status, user facing time, epoch 2000
        "a1 f0 6b f0 7d f0"  # 16.1 / 10.7 / 12.5 kPa
        "a8 df 86 2d"  # 2024-03-15 10:30:00 UTC
        "48 00"  # pulse 72
        "ff"  # unknown user
        "04 00"  # irregular pulse
        "b8 ed 86 2d"  # user facing time 2024-03-15 11:30:00 (local wall clock)
    )
    m = EnhancedBloodPressureMeasurement.from_bytes(payload)
    assert m == EnhancedBloodPressureMeasurement(
        PressureUnit.KPA,
        16.1,
        10.7,
        12.5,
        timestamp=datetime(2024, 3, 15, 10, 30, tzinfo=UTC),
        pulse_rate=72.0,
        user_id=255,
        status=MeasurementStatus.IRREGULAR_PULSE_DETECTED,
        user_facing_time=datetime(2024, 3, 15, 11, 30),
    )
    assert not m.user_known
    assert bytes(m) == payload


def test_enhanced_timestamp_in_another_zone_is_stored_as_utc() -> None:
    m = EnhancedBloodPressureMeasurement(
        PressureUnit.MMHG,
        120.0,
        80.0,
        93.0,
        timestamp=datetime(2024, 3, 15, 5, 30, tzinfo=timezone(timedelta(hours=-5))),
    )
    assert m.timestamp is not None
    assert (m.timestamp.tzinfo, m.timestamp.hour) == (UTC, 10)


def test_enhanced_rejects_a_naive_timestamp() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        EnhancedBloodPressureMeasurement(
            PressureUnit.MMHG, 120.0, 80.0, 93.0, timestamp=datetime(2024, 3, 15)
        )


def test_enhanced_rejects_a_timestamp_before_its_epoch() -> None:
    with pytest.raises(ValueError, match="outside the uint32 seconds"):
        EnhancedBloodPressureMeasurement(
            PressureUnit.MMHG, 120.0, 80.0, 93.0, timestamp=datetime(1999, 12, 31, tzinfo=UTC)
        )


def test_enhanced_reserved_flag_bit_7_is_refused() -> None:
    with pytest.raises(MalformedPayload, match="flags at byte offset 0: reserved bit 0x80"):
        EnhancedBloodPressureMeasurement.from_bytes(bytes.fromhex("80 78 00 50 00 5d 00"))


def test_enhanced_truncated_user_facing_time_names_its_offset() -> None:
    with pytest.raises(MalformedPayload, match="user facing time at byte offset 7"):
        EnhancedBloodPressureMeasurement.from_bytes(bytes.fromhex("60 78 00 50 00 5d 00 00 00"))


def test_enhanced_error_frame_is_all_nan_without_status() -> None:
    m = EnhancedBloodPressureMeasurement.from_bytes(bytes.fromhex("40 ff 07 ff 07 ff 07"))
    assert m.is_error_frame


# --- Blood Pressure Record: one segment ----------------------------------------------


def test_single_segment_record_layout() -> None:
    payload = bytes.fromhex("03 05 00 35 2a") + BPM_120_80_93
    record = BloodPressureRecord.from_bytes(payload)
    assert record == BloodPressureRecord(5, gatt.BLOOD_PRESSURE_MEASUREMENT, BPM_120_80_93)
    assert bytes(record) == payload


def test_segmentation_header_carries_first_last_and_a_6_bit_counter() -> None:
    record = BloodPressureRecord.from_bytes(bytes.fromhex("fe 01 00 34 2b 00"))
    assert (record.first_segment, record.last_segment, record.segment_counter) == (
        False,
        True,
        63,
    )


def test_record_with_e2e_crc_takes_the_last_two_bytes_of_the_last_segment() -> None:
    record = BloodPressureRecord.from_bytes(
        bytes.fromhex("03 05 00 35 2a") + BPM_120_80_93 + b"\x34\x12", with_e2e_crc=True
    )
    assert (record.recorded, record.e2e_crc) == (BPM_120_80_93, 0x1234)


def test_record_shorter_than_its_header_names_the_uuid_field() -> None:
    with pytest.raises(MalformedPayload, match="Blood Pressure Record: uuid at byte offset 3"):
        BloodPressureRecord.from_bytes(bytes.fromhex("03 05 00 35"))


def test_record_too_short_for_its_e2e_crc_is_malformed() -> None:
    with pytest.raises(MalformedPayload, match="e2e-crc at byte offset 5"):
        BloodPressureRecord.from_bytes(bytes.fromhex("03 05 00 35 2a 00"), with_e2e_crc=True)


def test_e2e_crc_is_crc_ccitt_with_seed_ffff() -> None:
    assert e2e_crc(b"123456789") == 0x29B1  # the CRC-16/CCITT-FALSE check value


def test_stored_record_decodes_its_measurement_by_uuid() -> None:
    record = StoredRecord(5, gatt.BLOOD_PRESSURE_MEASUREMENT, BPM_120_80_93)
    assert record.measurement() == BloodPressureMeasurement(PressureUnit.MMHG, 120.0, 80.0, 93.0)


def test_stored_record_of_another_characteristic_is_malformed() -> None:
    with pytest.raises(MalformedPayload, match="uuid"):
        StoredRecord(5, 0x2A19, b"\x64").measurement()


# --- segmentation and reassembly ------------------------------------------------------

ENHANCED = EnhancedBloodPressureMeasurement(
    PressureUnit.MMHG,
    120.0,
    80.0,
    93.0,
    timestamp=datetime(2024, 3, 15, 10, 30, tzinfo=UTC),
    pulse_rate=72.0,
    user_id=1,
    status=MeasurementStatus(0),
    user_facing_time=datetime(2024, 3, 15, 11, 30),
)


def test_a_short_value_fits_one_segment() -> None:
    (segment,) = segment_record(5, gatt.BLOOD_PRESSURE_MEASUREMENT, BPM_120_80_93)
    assert bytes(segment) == bytes.fromhex("03 05 00 35 2a") + BPM_120_80_93


def test_a_20_byte_enhanced_measurement_with_crc_needs_two_default_segments() -> None:
    segments = segment_record(7, ENHANCED.UUID, bytes(ENHANCED), with_e2e_crc=True)
    assert [len(bytes(s)) for s in segments] == [20, 12]
    assert [(s.first_segment, s.last_segment, s.segment_counter) for s in segments] == [
        (True, False, 0),
        (False, True, 1),
    ]


def test_segments_reassemble_into_the_original_measurement() -> None:
    assembler = BloodPressureRecordAssembler(with_e2e_crc=True)
    segments = segment_record(7, ENHANCED.UUID, bytes(ENHANCED), with_e2e_crc=True)
    assert assembler.feed(bytes(segments[0])) is None
    record = assembler.feed(bytes(segments[1]))
    assert record is not None
    assert (record.sequence_number, record.measurement()) == (7, ENHANCED)
    assert not assembler.in_progress


def test_segment_counter_rolls_over_from_63_to_0() -> None:
    segments = segment_record(
        1, ENHANCED.UUID, bytes(ENHANCED), max_segment_size=8, first_segment_counter=62
    )
    assert [s.segment_counter for s in segments[:4]] == [62, 63, 0, 1]
    assembler = BloodPressureRecordAssembler()
    results = [assembler.feed(bytes(s)) for s in segments]
    assert results[-1] == StoredRecord(1, ENHANCED.UUID, bytes(ENHANCED))


def test_a_lost_segment_is_reported_as_a_counter_gap() -> None:
    segments = segment_record(1, ENHANCED.UUID, bytes(ENHANCED), max_segment_size=8)
    assembler = BloodPressureRecordAssembler()
    assembler.feed(bytes(segments[0]))
    with pytest.raises(MalformedPayload, match="segment counter 2 after 0: a segment was lost"):
        assembler.feed(bytes(segments[2]))
    assert not assembler.in_progress


def test_a_new_first_segment_abandons_the_unfinished_record_and_starts_the_new_one() -> None:
    first = segment_record(1, ENHANCED.UUID, bytes(ENHANCED), max_segment_size=12)
    (second,) = segment_record(2, gatt.BLOOD_PRESSURE_MEASUREMENT, BPM_120_80_93)
    assembler = BloodPressureRecordAssembler()
    assembler.feed(bytes(first[0]))
    record = assembler.feed(bytes(second))
    assert record == StoredRecord(2, gatt.BLOOD_PRESSURE_MEASUREMENT, BPM_120_80_93)
    assert assembler.abandoned == [1]


def test_a_continuation_without_a_first_segment_is_malformed() -> None:
    segments = segment_record(1, ENHANCED.UUID, bytes(ENHANCED), max_segment_size=12)
    with pytest.raises(MalformedPayload, match="no record in progress"):
        BloodPressureRecordAssembler().feed(bytes(segments[1]))


def test_a_segment_of_another_record_inside_a_record_is_malformed() -> None:
    one = segment_record(1, ENHANCED.UUID, bytes(ENHANCED), max_segment_size=12)
    two = segment_record(2, ENHANCED.UUID, bytes(ENHANCED), max_segment_size=12)
    assembler = BloodPressureRecordAssembler()
    assembler.feed(bytes(one[0]))
    with pytest.raises(MalformedPayload, match="segment of record 2 inside record 1"):
        assembler.feed(bytes(two[1]))


def test_a_corrupted_record_fails_its_e2e_crc() -> None:
    (segment,) = segment_record(
        5, gatt.BLOOD_PRESSURE_MEASUREMENT, BPM_120_80_93, with_e2e_crc=True
    )
    corrupted = bytearray(bytes(segment))
    corrupted[6] ^= 0x01  # systolic 120 -> 121
    with pytest.raises(MalformedPayload, match="e2e-crc at byte offset 12: record 5: computed"):
        BloodPressureRecordAssembler(with_e2e_crc=True).feed(bytes(corrupted))


def test_segment_record_refuses_a_segment_size_with_no_room_for_data() -> None:
    with pytest.raises(ValueError, match="no room"):
        segment_record(1, ENHANCED.UUID, bytes(ENHANCED), max_segment_size=5)

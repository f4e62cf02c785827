"""Properties of the codec: exact round trips, and random bytes never crash a decoder.

Round trips compare with NaN treated as equal to NaN (a failed cuff reading is all NaN,
and NaN != NaN would make every such comparison fail for the wrong reason).
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from devices.bps import (
    AdjustReason,
    BatteryLevel,
    BloodPressureFeature,
    BloodPressureMeasurement,
    BloodPressureRecord,
    BloodPressureRecordAssembler,
    CurrentTime,
    DateTime,
    EnhancedBloodPressureMeasurement,
    EpochStart,
    IntermediateCuffPressure,
    MalformedPayload,
    MeasurementStatus,
    PressureUnit,
    RacpOpCode,
    RacpOperator,
    RacpRequest,
    RacpResponse,
    StoredRecord,
    decode_racp_indication,
    decode_sfloat,
    segment_record,
)


def comparable(value: object) -> object:
    """A dataclass as a tuple in which NaN equals NaN."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return tuple(comparable(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value


# --- strategies -----------------------------------------------------------------------

# Every value an SFLOAT can carry (including NaN and the infinities), plus the everyday
# one-decimal readings a simulator produces.
sfloats = st.one_of(
    st.integers(0, 0xFFFF).map(decode_sfloat),
    st.decimals(min_value=-204, max_value=204, places=1).map(float),
)
wall_clocks = st.datetimes(min_value=datetime(1582, 1, 1), max_value=datetime(9999, 12, 31)).map(
    lambda d: d.replace(microsecond=0)
)
units = st.sampled_from(PressureUnit)
statuses = st.integers(0, 0xFFFF).map(MeasurementStatus)

measurements = st.builds(
    BloodPressureMeasurement,
    unit=units,
    systolic=sfloats,
    diastolic=sfloats,
    mean_arterial_pressure=sfloats,
    timestamp=st.none() | wall_clocks,
    pulse_rate=st.none() | sfloats,
    user_id=st.none() | st.integers(0, 255),
    status=st.none() | statuses,
)

cuff_pressures = st.builds(
    IntermediateCuffPressure,
    unit=units,
    cuff_pressure=sfloats,
    timestamp=st.none() | wall_clocks,
    pulse_rate=st.none() | sfloats,
    user_id=st.none() | st.integers(0, 255),
    status=st.none() | statuses,
)


@st.composite
def enhanced_measurements(draw: st.DrawFn) -> EnhancedBloodPressureMeasurement:
    epoch = draw(st.sampled_from(EpochStart))
    span = st.datetimes(min_value=epoch.origin, max_value=datetime(int(epoch) + 136, 1, 1)).map(
        lambda d: d.replace(microsecond=0)
    )
    return EnhancedBloodPressureMeasurement(
        unit=draw(units),
        systolic=draw(sfloats),
        diastolic=draw(sfloats),
        mean_arterial_pressure=draw(sfloats),
        timestamp=draw(st.none() | span.map(lambda d: d.replace(tzinfo=UTC))),
        pulse_rate=draw(st.none() | sfloats),
        user_id=draw(st.none() | st.integers(0, 255)),
        status=draw(st.none() | statuses),
        user_facing_time=draw(st.none() | span),
        epoch=epoch,
    )


@st.composite
def racp_requests(draw: st.DrawFn) -> RacpRequest:
    op_code = draw(
        st.sampled_from(
            [
                RacpOpCode.REPORT_STORED_RECORDS,
                RacpOpCode.DELETE_STORED_RECORDS,
                RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS,
                RacpOpCode.COMBINED_REPORT,
                RacpOpCode.ABORT_OPERATION,
            ]
        )
    )
    if op_code is RacpOpCode.ABORT_OPERATION:
        return RacpRequest.abort()
    operator = draw(st.sampled_from([o for o in RacpOperator if o is not RacpOperator.NULL]))
    a, b = sorted(draw(st.lists(st.integers(0, 0xFFFF), min_size=2, max_size=2)))
    if operator is RacpOperator.LESS_THAN_OR_EQUAL:
        return RacpRequest(op_code, operator, max_sequence_number=b)
    if operator is RacpOperator.GREATER_THAN_OR_EQUAL:
        return RacpRequest(op_code, operator, min_sequence_number=a)
    if operator is RacpOperator.WITHIN_RANGE:
        return RacpRequest(op_code, operator, min_sequence_number=a, max_sequence_number=b)
    return RacpRequest(op_code, operator)


# --- round trips ----------------------------------------------------------------------


@settings(deadline=None)  # wall-clock deadlines flake on a shared machine
@given(measurements)
def test_every_accepted_measurement_round_trips_exactly(m: BloodPressureMeasurement) -> None:
    again = BloodPressureMeasurement.from_bytes(bytes(m))
    assert comparable(again) == comparable(m)
    assert bytes(again) == bytes(m)


@settings(deadline=None)  # wall-clock deadlines flake on a shared machine
@given(cuff_pressures)
def test_every_accepted_cuff_pressure_round_trips_exactly(m: IntermediateCuffPressure) -> None:
    assert comparable(IntermediateCuffPressure.from_bytes(bytes(m))) == comparable(m)


@settings(deadline=None)  # wall-clock deadlines flake on a shared machine
@given(enhanced_measurements())
def test_every_accepted_enhanced_measurement_round_trips_exactly(
    m: EnhancedBloodPressureMeasurement,
) -> None:
    assert comparable(EnhancedBloodPressureMeasurement.from_bytes(bytes(m))) == comparable(m)


@settings(deadline=None)  # wall-clock deadlines flake on a shared machine
@given(racp_requests())
def test_every_racp_request_round_trips(request_: RacpRequest) -> None:
    assert RacpRequest.from_bytes(bytes(request_)) == request_


@settings(deadline=None)  # wall-clock deadlines flake on a shared machine
@given(
    st.integers(0, 0xFFFF),
    measurements,
    st.integers(6, 40),
    st.booleans(),
    st.integers(0, 63),
)
def test_every_segmented_record_reassembles_to_its_value(
    sequence_number: int,
    m: BloodPressureMeasurement,
    max_segment_size: int,
    with_crc: bool,
    first_counter: int,
) -> None:
    if with_crc and max_segment_size < 8:
        max_segment_size = 8
    value = bytes(m)
    assembler = BloodPressureRecordAssembler(with_e2e_crc=with_crc)
    results = [
        assembler.feed(bytes(segment))
        for segment in segment_record(
            sequence_number,
            m.UUID,
            value,
            max_segment_size=max_segment_size,
            with_e2e_crc=with_crc,
            first_segment_counter=first_counter,
        )
    ]
    assert results[:-1] == [None] * (len(results) - 1)
    assert results[-1] == StoredRecord(sequence_number, m.UUID, value)


@settings(deadline=None)  # wall-clock deadlines flake on a shared machine
@given(wall_clocks, st.integers(0, 255), st.integers(0, 255))
def test_current_time_round_trips(when: datetime, fractions: int, reason: int) -> None:
    value = CurrentTime(
        DateTime.from_datetime(when), when.isoweekday(), fractions, AdjustReason(reason)
    )
    assert CurrentTime.from_bytes(bytes(value)) == value


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=32))
def test_random_bytes_decode_or_raise_malformed_payload(data: bytes) -> None:
    for decode in DECODERS:
        try:
            decode(data)
        except MalformedPayload:
            pass


# --- 100,000 random payloads ------------------------------------------------------------


def _decode_record_with_crc(data: bytes) -> BloodPressureRecord:
    return BloodPressureRecord.from_bytes(data, with_e2e_crc=True)


def _decode_feature(data: bytes) -> BloodPressureFeature:
    return BloodPressureFeature.from_bytes(data)


DECODERS: list[Callable[[bytes], Any]] = [
    BloodPressureMeasurement.from_bytes,
    IntermediateCuffPressure.from_bytes,
    EnhancedBloodPressureMeasurement.from_bytes,
    _decode_feature,
    DateTime.from_bytes,
    CurrentTime.from_bytes,
    BatteryLevel.from_bytes,
    RacpRequest.from_bytes,
    RacpResponse.from_bytes,
    decode_racp_indication,
    BloodPressureRecord.from_bytes,
    _decode_record_with_crc,
]


def _random_payload(rng: random.Random, reserved_mask: int) -> bytes:
    """Random bytes, half of them with the flags byte's reserved bits cleared so that the
    decoder gets past the flags into the fields."""
    data = bytearray(rng.randbytes(rng.randrange(0, 32)))
    if data and rng.random() < 0.5:
        data[0] &= ~reserved_mask & 0xFF
    return bytes(data)


def _plausible_measurement_payload(rng: random.Random) -> bytes:
    """Random fields behind random flags, at the length those flags announce (give or take
    a byte), with a date that is valid more often than chance would make it."""
    flags = rng.randrange(0x20)
    data = bytearray((flags,)) + rng.randbytes(6)
    if flags & 0x02:
        date = [rng.randrange(1582, 10000), rng.randrange(13), rng.randrange(29)]
        clock = [rng.randrange(24), rng.randrange(60), rng.randrange(60)]
        if rng.random() < 0.3:
            date[rng.randrange(3)] = 0 if rng.random() < 0.5 else 0xFF
        data += date[0].to_bytes(2, "little") + bytes(date[1:] + clock)
    data += rng.randbytes(2 * bool(flags & 0x04) + bool(flags & 0x08) + 2 * bool(flags & 0x10))
    slack = rng.choice((-1, 0, 0, 0, 1))
    return bytes(data[:slack] if slack < 0 else data + rng.randbytes(slack))


def test_100k_random_measurement_payloads_decode_or_raise_malformed_payload() -> None:
    rng = random.Random(0x2A35)
    decoded = 0
    for index in range(100_000):
        if index % 2:
            data = _plausible_measurement_payload(rng)
        else:
            data = _random_payload(rng, 0xE0)
        try:
            m = BloodPressureMeasurement.from_bytes(data)
        except MalformedPayload:
            continue
        decoded += 1
        # Whatever decodes must also encode, and decode again to the same thing.
        assert comparable(BloodPressureMeasurement.from_bytes(bytes(m))) == comparable(m)
    assert decoded > 20_000  # the loop reached past the flags, not only the error paths


def test_random_payloads_for_every_other_decoder_decode_or_raise_malformed_payload() -> None:
    rng = random.Random(0x2B36)
    for decode in DECODERS[1:]:
        for _ in range(10_000):
            try:
                decode(_random_payload(rng, 0x80))
            except MalformedPayload:
                pass


def test_random_segments_never_crash_the_assembler() -> None:
    rng = random.Random(0x2B37)
    assembler = BloodPressureRecordAssembler(with_e2e_crc=True)
    for _ in range(10_000):
        data = bytearray(rng.randbytes(rng.randrange(0, 24)))
        if len(data) >= 5 and rng.random() < 0.5:
            data[1:5] = b"\x01\x00\x35\x2a"  # same record, so segments chain
        try:
            record = assembler.feed(bytes(data))
        except MalformedPayload:
            continue
        if record is not None:
            try:
                record.measurement()
            except MalformedPayload:
                pass


def test_random_racp_writes_always_get_a_request_or_a_response_code() -> None:
    rng = random.Random(0x2A52)
    for _ in range(10_000):
        parsed = RacpRequest.parse(rng.randbytes(rng.randrange(0, 8)))
        assert isinstance(parsed, RacpRequest | RacpResponse)

"""Enhanced Blood Pressure Measurement (0x2B34) and the segmented Blood Pressure Record
(0x2B36): segmenting on the server, reassembly on the client.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum, IntFlag
from typing import ClassVar, Final, Self

from devices import gatt

# --- Errors ------------------------------------------------------------------------
from devices.bps.measurement import (
    BloodPressureMeasurement,
    CompoundPressures,
    _validate_common,
)
from devices.bps.support import (
    MalformedPayload,
    MeasurementStatus,
    PressureUnit,
    _check_range,
    _check_sfloat,
    _check_timestamp,
    _Reader,
    _WallClock,
    encode_sfloat,
)

# --- Enhanced Blood Pressure Measurement (BPS 1.1; GSS "Enhanced Blood Pressure
# Measurement", 0x2B34) -----------------------------------------------------------------


class EpochStart(IntEnum):
    """Enhanced BPM flags bit 6: the epoch the uint32 times count seconds from
    (0 = 1900-01-01 00:00:00, 1 = 2000-01-01 00:00:00)."""

    YEAR_1900 = 1900
    YEAR_2000 = 2000

    @property
    def origin(self) -> datetime:
        """The epoch as a naive datetime (add seconds, then attach the zone)."""
        return datetime(int(self), 1, 1)


class EnhancedBloodPressureMeasurementFlags(IntFlag):
    """Flags byte of Enhanced Blood Pressure Measurement; bit 7 is RFU."""

    UNITS_KPA = 0x01
    TIME_STAMP_PRESENT = 0x02
    PULSE_RATE_PRESENT = 0x04
    USER_ID_PRESENT = 0x08
    MEASUREMENT_STATUS_PRESENT = 0x10
    USER_FACING_TIME_PRESENT = 0x20
    EPOCH_START_2000 = 0x40


_EBPM_FLAGS_RFU: Final = 0x80


def _epoch_seconds(name: str, value: _WallClock, epoch: EpochStart) -> int:
    """Seconds since ``epoch`` of a naive wall-clock (or UTC) time, checked to fit uint32."""
    delta = value - epoch.origin
    if delta.microseconds:
        raise ValueError(f"{name} carries whole seconds only; use .replace(microsecond=0)")
    seconds = delta.days * 86_400 + delta.seconds
    if not 0 <= seconds <= 0xFFFF_FFFF:
        raise ValueError(
            f"{name} {value.isoformat()} is outside the uint32 seconds since {epoch.origin.date()}"
        )
    return seconds


@dataclass(frozen=True)
class EnhancedBloodPressureMeasurement(CompoundPressures):
    """Enhanced Blood Pressure Measurement (0x2B34, BPS 1.1).

    Unlike 0x2A35 its ``timestamp`` is UTC (a tz-aware datetime here), counted on the wire
    in uint32 seconds since ``epoch``; ``user_facing_time`` is what the cuff's display
    showed (naive local wall clock), in the same uint32 encoding.
    """

    unit: PressureUnit
    systolic: float
    diastolic: float
    mean_arterial_pressure: float
    timestamp: _WallClock | None = None
    pulse_rate: float | None = None
    user_id: int | None = None
    status: MeasurementStatus | None = None
    user_facing_time: _WallClock | None = None
    epoch: EpochStart = EpochStart.YEAR_2000

    CHARACTERISTIC: ClassVar[str] = "Enhanced Blood Pressure Measurement"
    UUID: ClassVar[int] = gatt.ENHANCED_BLOOD_PRESSURE_MEASUREMENT

    def __post_init__(self) -> None:
        _check_sfloat("systolic", self.systolic)
        _check_sfloat("diastolic", self.diastolic)
        _check_sfloat("mean_arterial_pressure", self.mean_arterial_pressure)
        # timestamp is UTC here, so it is checked on its own below, not as a naive clock.
        _validate_common(self, None, self.pulse_rate, self.user_id, self.status)
        object.__setattr__(self, "epoch", EpochStart(self.epoch))
        if self.timestamp is not None:
            if not isinstance(self.timestamp, datetime) or self.timestamp.utcoffset() is None:
                raise ValueError("timestamp must be a timezone-aware datetime (it is UTC)")
            utc = self.timestamp.astimezone(UTC)
            object.__setattr__(self, "timestamp", utc)
            _epoch_seconds("timestamp", utc.replace(tzinfo=None), self.epoch)
        if self.user_facing_time is not None:
            _check_timestamp("user_facing_time", self.user_facing_time)
            _epoch_seconds("user_facing_time", self.user_facing_time, self.epoch)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Self:
        reader = _Reader(cls.CHARACTERISTIC, data)
        raw_flags = reader.uint("flags", 1)
        if raw_flags & _EBPM_FLAGS_RFU:
            raise reader.error(
                "flags",
                f"reserved bit {raw_flags & _EBPM_FLAGS_RFU:#04x} set; the fields it adds are "
                f"unknown, so the rest of the value cannot be read",
                0,
            )
        flags = EnhancedBloodPressureMeasurementFlags(raw_flags)
        epoch = (
            EpochStart.YEAR_2000
            if flags & EnhancedBloodPressureMeasurementFlags.EPOCH_START_2000
            else EpochStart.YEAR_1900
        )
        unit = (
            PressureUnit.KPA
            if flags & EnhancedBloodPressureMeasurementFlags.UNITS_KPA
            else PressureUnit.MMHG
        )
        systolic = reader.sfloat("systolic")
        diastolic = reader.sfloat("diastolic")
        mean_arterial_pressure = reader.sfloat("mean arterial pressure")
        timestamp = None
        if flags & EnhancedBloodPressureMeasurementFlags.TIME_STAMP_PRESENT:
            seconds = reader.uint("time stamp", 4)
            timestamp = (epoch.origin + timedelta(seconds=seconds)).replace(tzinfo=UTC)
        pulse_rate = None
        if flags & EnhancedBloodPressureMeasurementFlags.PULSE_RATE_PRESENT:
            pulse_rate = reader.sfloat("pulse rate")
        user_id = None
        if flags & EnhancedBloodPressureMeasurementFlags.USER_ID_PRESENT:
            user_id = reader.uint("user id", 1)
        status = None
        if flags & EnhancedBloodPressureMeasurementFlags.MEASUREMENT_STATUS_PRESENT:
            status = MeasurementStatus(reader.uint("measurement status", 2))
        user_facing_time = None
        if flags & EnhancedBloodPressureMeasurementFlags.USER_FACING_TIME_PRESENT:
            user_facing_time = epoch.origin + timedelta(seconds=reader.uint("user facing time", 4))
        reader.end()
        try:
            return cls(
                unit,
                systolic,
                diastolic,
                mean_arterial_pressure,
                timestamp,
                pulse_rate,
                user_id,
                status,
                user_facing_time,
                epoch,
            )
        except ValueError as error:  # a safety net: the reader validates field by field
            raise MalformedPayload(cls.CHARACTERISTIC, "value", 0, str(error)) from None

    def __bytes__(self) -> bytes:
        flags = EnhancedBloodPressureMeasurementFlags(0)
        body = b"".join(
            encode_sfloat(v).to_bytes(2, "little")
            for v in (self.systolic, self.diastolic, self.mean_arterial_pressure)
        )
        if self.unit is PressureUnit.KPA:
            flags |= EnhancedBloodPressureMeasurementFlags.UNITS_KPA
        if self.epoch is EpochStart.YEAR_2000:
            flags |= EnhancedBloodPressureMeasurementFlags.EPOCH_START_2000
        if self.timestamp is not None:
            flags |= EnhancedBloodPressureMeasurementFlags.TIME_STAMP_PRESENT
            utc = self.timestamp.astimezone(UTC).replace(tzinfo=None)
            body += _epoch_seconds("timestamp", utc, self.epoch).to_bytes(4, "little")
        if self.pulse_rate is not None:
            flags |= EnhancedBloodPressureMeasurementFlags.PULSE_RATE_PRESENT
            body += encode_sfloat(self.pulse_rate).to_bytes(2, "little")
        if self.user_id is not None:
            flags |= EnhancedBloodPressureMeasurementFlags.USER_ID_PRESENT
            body += bytes((self.user_id,))
        if self.status is not None:
            flags |= EnhancedBloodPressureMeasurementFlags.MEASUREMENT_STATUS_PRESENT
            body += int(self.status).to_bytes(2, "little")
        if self.user_facing_time is not None:
            flags |= EnhancedBloodPressureMeasurementFlags.USER_FACING_TIME_PRESENT
            seconds = _epoch_seconds("user_facing_time", self.user_facing_time, self.epoch)
            body += seconds.to_bytes(4, "little")
        return bytes((flags,)) + body


# --- Blood Pressure Record (BPS 1.1; GSS "Blood Pressure Record", 0x2B36) ------------------
# Segmentation Header (uint8: bit 0 first segment, bit 1 last segment, bits 2-7 rolling
# segment counter), Sequence Number (uint16), UUID (uint16) of the recorded characteristic,
# Recorded Characteristic (a part of, or the whole, value), E2E-CRC (uint16, present when
# the server's Blood Pressure Feature has E2E_CRC).
#
# Segmentation as implemented here (the GSS table is all we have to go on): every segment
# repeats the header, sequence number and UUID and carries the next slice of the recorded
# value; the E2E-CRC, when used, ends the last segment and covers every byte of every
# segment of the record before it ("the CRC over all the data of a complete single or
# multi-message record").

_RECORD: Final = "Blood Pressure Record"
_RECORD_HEADER_SIZE: Final = 5  # segmentation header + sequence number + UUID
_SEGMENT_COUNTER_MODULUS: Final = 64  # 6-bit rolling counter
# ATT_MTU 23 (the LE default, Core Vol 3 Part F 3.2.8) leaves 20 bytes for a value.
DEFAULT_MAX_SEGMENT_SIZE: Final = 20


def e2e_crc(data: bytes) -> int:
    """E2E-CRC of the medical-device services: CRC-CCITT, polynomial
    x^16 + x^12 + x^5 + 1 (0x1021), seed 0xFFFF, as CGMS 1.0.1 and PLXS 1.0 define it."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


@dataclass(frozen=True)
class BloodPressureRecord:
    """One Blood Pressure Record indication: a whole stored value or one segment of it.

    ``recorded`` is the raw slice of the recorded characteristic (``uuid``, normally
    0x2A35 or 0x2B34) this segment carries. ``e2e_crc`` is the CRC as sent, only ever in
    the last segment; decode it with ``from_bytes(data, with_e2e_crc=True)`` when the
    feature says the cuff sends one. Build a record's segments with
    :func:`segment_record`; put them back together with :class:`BloodPressureRecordAssembler`.
    """

    sequence_number: int
    uuid: int
    recorded: bytes
    first_segment: bool = True
    last_segment: bool = True
    segment_counter: int = 0
    e2e_crc: int | None = None

    def __post_init__(self) -> None:
        _check_range("sequence_number", self.sequence_number, 0, 0xFFFF)
        _check_range("uuid", self.uuid, 0, 0xFFFF)
        _check_range("segment_counter", self.segment_counter, 0, _SEGMENT_COUNTER_MODULUS - 1)
        if not isinstance(self.recorded, bytes):
            raise ValueError(f"recorded must be bytes, got {type(self.recorded).__name__}")
        if self.e2e_crc is not None:
            _check_range("e2e_crc", self.e2e_crc, 0, 0xFFFF)
            if not self.last_segment:
                raise ValueError("the E2E-CRC ends a record: only the last segment carries it")

    @property
    def header(self) -> int:
        return int(self.first_segment) | int(self.last_segment) << 1 | self.segment_counter << 2

    @classmethod
    def from_bytes(
        cls, data: bytes | bytearray | memoryview, *, with_e2e_crc: bool = False
    ) -> Self:
        reader = _Reader(_RECORD, data)
        header = reader.uint("segmentation header", 1)
        sequence_number = reader.uint("sequence number", 2)
        uuid = reader.uint("uuid", 2)
        last_segment = bool(header & 0b10)
        crc_size = 2 if with_e2e_crc and last_segment else 0
        if reader.remaining() < crc_size:
            raise reader.error("e2e-crc", "the last segment ends before its E2E-CRC")
        recorded = reader.take("recorded characteristic", reader.remaining() - crc_size)
        crc = reader.uint("e2e-crc", 2) if crc_size else None
        reader.end()
        return cls(
            sequence_number,
            uuid,
            recorded,
            first_segment=bool(header & 0b01),
            last_segment=last_segment,
            segment_counter=header >> 2,
            e2e_crc=crc,
        )

    def __bytes__(self) -> bytes:
        crc = b"" if self.e2e_crc is None else self.e2e_crc.to_bytes(2, "little")
        return (
            bytes((self.header,))
            + self.sequence_number.to_bytes(2, "little")
            + self.uuid.to_bytes(2, "little")
            + self.recorded
            + crc
        )


def segment_record(
    sequence_number: int,
    uuid: int,
    value: bytes,
    *,
    max_segment_size: int = DEFAULT_MAX_SEGMENT_SIZE,
    with_e2e_crc: bool = False,
    first_segment_counter: int = 0,
) -> list[BloodPressureRecord]:
    """Split a stored value into Blood Pressure Record indications of at most
    ``max_segment_size`` bytes each (ATT_MTU - 3), for a server."""
    room = max_segment_size - _RECORD_HEADER_SIZE
    crc_size = 2 if with_e2e_crc else 0
    if room < 1 + crc_size:
        raise ValueError(f"max_segment_size {max_segment_size} leaves no room for data")
    _check_range("first_segment_counter", first_segment_counter, 0, _SEGMENT_COUNTER_MODULUS - 1)
    slices = [value[i : i + room] for i in range(0, len(value), room)] or [b""]
    if crc_size and len(slices[-1]) + crc_size > room:
        slices.append(b"")  # the CRC does not fit after the last slice: one more segment
    segments = []
    sent = b""
    for index, piece in enumerate(slices):
        last = index == len(slices) - 1
        segment = BloodPressureRecord(
            sequence_number,
            uuid,
            piece,
            first_segment=index == 0,
            last_segment=last,
            segment_counter=(first_segment_counter + index) % _SEGMENT_COUNTER_MODULUS,
        )
        if last and with_e2e_crc:
            crc = e2e_crc(sent + bytes(segment))
            segment = BloodPressureRecord(
                sequence_number,
                uuid,
                piece,
                first_segment=index == 0,
                last_segment=True,
                segment_counter=segment.segment_counter,
                e2e_crc=crc,
            )
        sent += bytes(segment)
        segments.append(segment)
    return segments


@dataclass(frozen=True)
class StoredRecord:
    """A whole stored value reassembled from Blood Pressure Record segments."""

    sequence_number: int
    uuid: int
    value: bytes

    def measurement(self) -> BloodPressureMeasurement | EnhancedBloodPressureMeasurement:
        """Decode the recorded value by its UUID (0x2A35 or 0x2B34)."""
        if self.uuid == gatt.BLOOD_PRESSURE_MEASUREMENT:
            return BloodPressureMeasurement.from_bytes(self.value)
        if self.uuid == gatt.ENHANCED_BLOOD_PRESSURE_MEASUREMENT:
            return EnhancedBloodPressureMeasurement.from_bytes(self.value)
        raise MalformedPayload(
            _RECORD, "uuid", 3, f"{self.uuid:#06x} is not a blood pressure measurement"
        )


class BloodPressureRecordAssembler:
    """Put Blood Pressure Record segments back together, one record at a time.

    ``feed`` returns the StoredRecord when its last segment arrives, else None. A segment
    that cannot continue the record in progress (a counter gap from a lost segment, a
    different sequence number, no first segment) raises MalformedPayload and drops the
    partial record. A first segment arriving before the previous record's last one starts
    the new record and adds the unfinished sequence number to ``abandoned``. Either way
    the collector asks for the missing sequence numbers again through the RACP.
    """

    def __init__(self, *, with_e2e_crc: bool = False) -> None:
        self.with_e2e_crc = with_e2e_crc
        self._segments: list[BloodPressureRecord] = []
        self._wire = b""
        self.abandoned: list[int] = []

    @property
    def in_progress(self) -> bool:
        return bool(self._segments)

    def feed(self, data: bytes | bytearray | memoryview) -> StoredRecord | None:
        segment = BloodPressureRecord.from_bytes(data, with_e2e_crc=self.with_e2e_crc)
        previous = self._segments[-1] if self._segments else None
        if segment.first_segment:
            if previous is not None:
                self.abandoned.append(previous.sequence_number)
            self._segments, self._wire = [segment], bytes(data)
        else:
            self._check_continues(segment, previous)
            self._segments.append(segment)
            self._wire += bytes(data)
        if not segment.last_segment:
            return None
        segments, wire = self._segments, self._wire
        self._segments, self._wire = [], b""
        if segment.e2e_crc is not None:
            expected = e2e_crc(wire[:-2])
            if expected != segment.e2e_crc:
                raise MalformedPayload(
                    _RECORD,
                    "e2e-crc",
                    len(bytes(data)) - 2,
                    f"record {segment.sequence_number}: computed {expected:#06x}, "
                    f"received {segment.e2e_crc:#06x}",
                )
        value = b"".join(s.recorded for s in segments)
        return StoredRecord(segment.sequence_number, segment.uuid, value)

    def _check_continues(
        self, segment: BloodPressureRecord, previous: BloodPressureRecord | None
    ) -> None:
        reason = None
        if previous is None:
            reason = "a continuation segment arrived with no record in progress"
        elif (segment.sequence_number, segment.uuid) != (previous.sequence_number, previous.uuid):
            reason = (
                f"segment of record {segment.sequence_number} inside record "
                f"{previous.sequence_number}"
            )
        elif segment.segment_counter != (previous.segment_counter + 1) % _SEGMENT_COUNTER_MODULUS:
            reason = (
                f"segment counter {segment.segment_counter} after "
                f"{previous.segment_counter}: a segment was lost"
            )
        if reason is not None:
            self._segments, self._wire = [], b""
            raise MalformedPayload(_RECORD, "segmentation header", 0, reason)

"""Blood Pressure Service codec: one set of value types for the cuff and the central.

Every characteristic value is a small immutable dataclass (or an ``IntFlag``) with
``from_bytes(data)`` and ``__bytes__()``, so the simulator (server) and the daemon (client)
share one codec and ``from_bytes(bytes(x)) == x`` holds for every value the constructor
accepts. Field order follows the GATT Specification Supplement (GSS) tables top to bottom.

Decoders raise :class:`MalformedPayload` (a ``ValueError``) naming the characteristic, the
field and the byte offset for anything they cannot decode faithfully: short payloads,
reserved flag bits that announce fields we cannot parse, out-of-range values, trailing
bytes. Nothing else escapes a decoder: no ``IndexError``, no ``struct.error``.

Pressures are kept in the unit the cuff sent (``unit``); ``pressures_mmhg`` converts once,
here, for everything downstream. A NaN pressure (a failed reading) round-trips as NaN;
compare such values by their bytes, since NaN != NaN.

What is here, in spec order:
- SFLOAT: ``decode_sfloat`` / ``encode_sfloat`` and the ``SFLOAT_*`` special values.
- 0x2A35 ``BloodPressureMeasurement``, 0x2A36 ``IntermediateCuffPressure`` (with
  ``PressureUnit``, ``MeasurementStatus``, ``PulseRateRange``), 0x2A49
  ``BloodPressureFeature``, 0x2B34 ``EnhancedBloodPressureMeasurement``.
- 0x2A08 ``DateTime``, 0x2A2B ``CurrentTime``, 0x2A19 ``BatteryLevel``.
- 0x2A52 Record Access Control Point: ``RacpRequest`` (``parse`` for a server),
  ``RacpResponse``, ``RacpNumberOfRecords``, ``decode_racp_indication``.
- 0x2B36 ``BloodPressureRecord`` segments, ``segment_record`` (server) and
  ``BloodPressureRecordAssembler`` (client) giving a ``StoredRecord``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum, IntFlag, StrEnum
from typing import ClassVar, Final, Literal, NoReturn, Self

from devices import gatt

# --- Errors ------------------------------------------------------------------------


class MalformedPayload(ValueError):
    """A characteristic value that does not follow its spec layout.

    ``characteristic``, ``field`` and ``offset`` (bytes from the start of the value) say
    where decoding stopped, so a log line is enough to find the cuff's bug.
    """

    def __init__(self, characteristic: str, field: str, offset: int, reason: str) -> None:
        self.characteristic = characteristic
        self.field = field
        self.offset = offset
        self.reason = reason
        super().__init__(f"{characteristic}: {field} at byte offset {offset}: {reason}")


class _Reader:
    """Cursor over a payload that turns every shortfall into a MalformedPayload."""

    def __init__(self, characteristic: str, data: bytes | bytearray | memoryview) -> None:
        self.characteristic = characteristic
        self.data = bytes(data)
        self.offset = 0

    def error(self, field: str, reason: str, offset: int | None = None) -> MalformedPayload:
        return MalformedPayload(
            self.characteristic, field, self.offset if offset is None else offset, reason
        )

    def take(self, field: str, size: int) -> bytes:
        end = self.offset + size
        if end > len(self.data):
            raise self.error(
                field,
                f"needs {size} byte(s) but the value ends after {len(self.data)} byte(s)",
            )
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def uint(self, field: str, size: int) -> int:
        return int.from_bytes(self.take(field, size), "little")

    def sfloat(self, field: str) -> float:
        return decode_sfloat(self.uint(field, 2))

    def remaining(self) -> int:
        return len(self.data) - self.offset

    def end(self) -> None:
        """Reject trailing bytes: they mean we misread the flags or the cuff is off-spec."""
        if self.offset != len(self.data):
            raise self.error(
                "end of value",
                f"{len(self.data) - self.offset} unexpected trailing byte(s) "
                f"{self.data[self.offset :].hex()}",
            )


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer within {low}..{high}, got {value!r}")


# --- SFLOAT (IEEE 11073-20601 16-bit float; GSS 2.3 "medfloat16") ------------------
# 4-bit two's-complement exponent (base 10) over a 12-bit two's-complement mantissa.
# These whole 16-bit values (exponent 0) are reserved special values (IEEE 11073-20601
# Annex F.8; GSS 2.3 table "medfloat16 special values").
SFLOAT_NAN: Final = 0x07FF
SFLOAT_NRES: Final = 0x0800  # "not at this resolution"
SFLOAT_POSITIVE_INFINITY: Final = 0x07FE
SFLOAT_NEGATIVE_INFINITY: Final = 0x0802
SFLOAT_RESERVED: Final = 0x0801
SFLOAT_SPECIAL_VALUES: Final = frozenset(
    {SFLOAT_NAN, SFLOAT_NRES, SFLOAT_POSITIVE_INFINITY, SFLOAT_NEGATIVE_INFINITY, SFLOAT_RESERVED}
)
_SFLOAT_MANTISSA_MIN: Final = -2048
_SFLOAT_MANTISSA_MAX: Final = 2047
_SFLOAT_EXPONENT_MIN: Final = -8
_SFLOAT_EXPONENT_MAX: Final = 7


def decode_sfloat(raw: int) -> float:
    """Decode a 16-bit SFLOAT to a float.

    NaN, NRes and the reserved value all decode to ``nan`` (none is a number a cuff
    measured); +INF and -INF to ``inf``/``-inf`` (a reading beyond the cuff's range).
    """
    if not 0 <= raw <= 0xFFFF:
        raise ValueError(f"an SFLOAT is 16 bits, got {raw:#x}")
    if raw in (SFLOAT_NAN, SFLOAT_NRES, SFLOAT_RESERVED):
        return math.nan
    if raw == SFLOAT_POSITIVE_INFINITY:
        return math.inf
    if raw == SFLOAT_NEGATIVE_INFINITY:
        return -math.inf
    mantissa = raw & 0x0FFF
    if mantissa >= 0x0800:
        mantissa -= 0x1000
    exponent = raw >> 12
    if exponent >= 0x8:
        exponent -= 0x10
    if exponent >= 0:
        return float(mantissa * 10**exponent)
    # Both operands are exact doubles, so the division is the correctly rounded decimal,
    # the same double as float("189e-1"); encode_sfloat recovers the mantissa from it.
    return mantissa / float(10**-exponent)


def _sfloat_fits(mantissa: int, exponent: int) -> bool:
    if not _SFLOAT_MANTISSA_MIN <= mantissa <= _SFLOAT_MANTISSA_MAX:
        return False
    if not _SFLOAT_EXPONENT_MIN <= exponent <= _SFLOAT_EXPONENT_MAX:
        return False
    # With exponent 0 the mantissas 2046, 2047, -2048, -2047, -2046 are special values.
    return not (exponent == 0 and (mantissa & 0x0FFF) in SFLOAT_SPECIAL_VALUES)


def encode_sfloat(value: float) -> int:
    """Encode a float as an SFLOAT without losing precision.

    The exponent keeps the value's own decimal precision (18.9 -> 189e-1, 120.0 -> 120e0,
    30000 -> 300e2). Raises ValueError when the value cannot be carried exactly (too many
    significant digits, or out of range): round it first if that is what you mean.
    """
    if math.isnan(value):
        return SFLOAT_NAN
    if math.isinf(value):
        return SFLOAT_POSITIVE_INFINITY if value > 0 else SFLOAT_NEGATIVE_INFINITY
    if value == 0:
        return 0
    if float(value).is_integer():
        # Whole numbers keep exponent 0 (120 -> 120e0) unless the mantissa must shrink.
        mantissa, exponent = int(value), 0
        while not _sfloat_fits(mantissa, exponent) and mantissa % 10 == 0:
            mantissa //= 10
            exponent += 1
    else:
        # The fewest decimal places that give back exactly this double, decoded the same
        # way decode_sfloat does (mantissa / 10**places): 18.9 -> 189 / 10.
        for places in range(1, -_SFLOAT_EXPONENT_MIN + 1):
            mantissa, exponent = round(value * 10**places), -places
            if mantissa / float(10**places) == value:
                break
        else:
            raise ValueError(
                f"{value!r} cannot be carried exactly by an SFLOAT "
                f"(more than {-_SFLOAT_EXPONENT_MIN} decimal places)"
            )
    if not _sfloat_fits(mantissa, exponent):
        raise ValueError(
            f"{value!r} cannot be carried exactly by an SFLOAT (needs mantissa {mantissa} "
            f"x 10^{exponent}; mantissa -2048..2047, exponent -8..7)"
        )
    return ((exponent & 0xF) << 12) | (mantissa & 0x0FFF)


def _check_sfloat(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a float, got {value!r}")
    try:
        encode_sfloat(value)
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None


# --- Units and status --------------------------------------------------------------


class PressureUnit(StrEnum):
    """Blood Pressure Measurement flags bit 0 (GSS 3.31.1): 0 = mmHg, 1 = kPa."""

    MMHG = "mmHg"
    KPA = "kPa"


# 1 kPa = 1000 Pa; 1 mmHg = 133.322 Pa (ISO 80000-4 conventional millimetre of mercury).
MMHG_PER_KPA: Final = 7.50062


def _to_mmhg(value: float, unit: PressureUnit) -> float:
    return value * MMHG_PER_KPA if unit is PressureUnit.KPA else value


class PulseRateRange(IntEnum):
    """Measurement Status bits 3-4 (GSS 3.31.2.6): a two-bit field, not two flags."""

    WITHIN_RANGE = 0
    EXCEEDS_UPPER_LIMIT = 1
    LESS_THAN_LOWER_LIMIT = 2
    RESERVED = 3


class MeasurementStatus(IntFlag):
    """Blood Pressure Measurement Status (GSS 3.31.2.6), 16 bits; bits 6-15 RFU are kept.

    Bits 3-4 together are the pulse-rate range; read them through ``pulse_rate_range``.
    """

    BODY_MOVEMENT_DETECTED = 0x01
    CUFF_TOO_LOOSE = 0x02
    IRREGULAR_PULSE_DETECTED = 0x04
    PULSE_RATE_EXCEEDS_UPPER_LIMIT = 0x08
    PULSE_RATE_LESS_THAN_LOWER_LIMIT = 0x10
    IMPROPER_MEASUREMENT_POSITION = 0x20

    @property
    def body_movement(self) -> bool:
        return bool(self & MeasurementStatus.BODY_MOVEMENT_DETECTED)

    @property
    def cuff_too_loose(self) -> bool:
        return bool(self & MeasurementStatus.CUFF_TOO_LOOSE)

    @property
    def irregular_pulse(self) -> bool:
        return bool(self & MeasurementStatus.IRREGULAR_PULSE_DETECTED)

    @property
    def pulse_rate_range(self) -> PulseRateRange:
        return PulseRateRange((int(self) >> 3) & 0b11)

    @property
    def improper_position(self) -> bool:
        return bool(self & MeasurementStatus.IMPROPER_MEASUREMENT_POSITION)


# A naive wall-clock datetime; an alias so classes with a ``datetime`` property can name it.
_WallClock = datetime

# --- Date Time (GSS 3.70, 0x2A08) -----------------------------------------------------
_YEAR_MIN: Final = 1582  # GSS 3.70: Year 1582..9999, 0 = not known
_YEAR_MAX: Final = 9999


@dataclass(frozen=True)
class DateTime:
    """Date Time (0x2A08), 7 bytes; year, month or day 0 means "not known" (GSS 3.70).

    A naive wall-clock time: the cuff's own clock, whatever zone it was set to.
    """

    year: int
    month: int
    day: int
    hours: int = 0
    minutes: int = 0
    seconds: int = 0

    SIZE: ClassVar[int] = 7

    def __post_init__(self) -> None:
        if self.year != 0:
            _check_range("year", self.year, _YEAR_MIN, _YEAR_MAX)
        _check_range("month", self.month, 0, 12)
        _check_range("day", self.day, 0, 31)
        _check_range("hours", self.hours, 0, 23)
        _check_range("minutes", self.minutes, 0, 59)
        _check_range("seconds", self.seconds, 0, 59)
        if self.is_date_known:
            datetime(self.year, self.month, self.day)  # raises ValueError for 2025-02-30

    @property
    def is_date_known(self) -> bool:
        return self.year != 0 and self.month != 0 and self.day != 0

    @property
    def datetime(self) -> _WallClock | None:
        """The naive datetime, or None when any part of the date is unknown."""
        if not self.is_date_known:
            return None
        return datetime(self.year, self.month, self.day, self.hours, self.minutes, self.seconds)

    @classmethod
    def from_datetime(cls, value: _WallClock) -> Self:
        """Wall-clock fields of ``value`` (an aware datetime in its own zone); drops
        sub-second precision, which the characteristic cannot carry."""
        return cls(value.year, value.month, value.day, value.hour, value.minute, value.second)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Self:
        reader = _Reader("Date Time", data)
        value = cls._read(reader, "")
        reader.end()
        return value

    @classmethod
    def _read(cls, reader: _Reader, prefix: str) -> Self:
        start = reader.offset
        fields = (
            reader.uint(f"{prefix}year", 2),
            reader.uint(f"{prefix}month", 1),
            reader.uint(f"{prefix}day", 1),
            reader.uint(f"{prefix}hours", 1),
            reader.uint(f"{prefix}minutes", 1),
            reader.uint(f"{prefix}seconds", 1),
        )
        try:
            return cls(*fields)
        except ValueError as error:
            raise reader.error(f"{prefix}date time", str(error), start) from None

    def __bytes__(self) -> bytes:
        return self.year.to_bytes(2, "little") + bytes(
            (self.month, self.day, self.hours, self.minutes, self.seconds)
        )


def _check_timestamp(name: str, value: datetime | None) -> None:
    if value is None:
        return
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime, got {value!r}")
    if value.tzinfo is not None:
        raise ValueError(
            f"{name} must be naive (the cuff's own clock carries no zone); "
            f"use .replace(tzinfo=None) after converting to the cuff's local time"
        )
    if value.microsecond:
        raise ValueError(
            f"{name} carries whole seconds only (Date Time, GSS 3.70); use .replace(microsecond=0)"
        )
    if not _YEAR_MIN <= value.year <= _YEAR_MAX:
        raise ValueError(f"{name} year must be within {_YEAR_MIN}..{_YEAR_MAX}")


# --- Blood Pressure Measurement and Intermediate Cuff Pressure (GSS 3.31, 3.125) --------


class BloodPressureMeasurementFlags(IntFlag):
    """Flags byte of Blood Pressure Measurement and Intermediate Cuff Pressure (GSS 3.31.1).

    Bits 5-7 are RFU: a decoder cannot know what fields they add, so it refuses them.
    """

    UNITS_KPA = 0x01
    TIME_STAMP_PRESENT = 0x02
    PULSE_RATE_PRESENT = 0x04
    USER_ID_PRESENT = 0x08
    MEASUREMENT_STATUS_PRESENT = 0x10


_BPM_FLAGS_RFU: Final = 0xE0
_BPM_UNITS_KPA: Final = int(BloodPressureMeasurementFlags.UNITS_KPA)
_BPM_TIME_STAMP_PRESENT: Final = int(BloodPressureMeasurementFlags.TIME_STAMP_PRESENT)
_BPM_PULSE_RATE_PRESENT: Final = int(BloodPressureMeasurementFlags.PULSE_RATE_PRESENT)
_BPM_USER_ID_PRESENT: Final = int(BloodPressureMeasurementFlags.USER_ID_PRESENT)
_BPM_MEASUREMENT_STATUS_PRESENT: Final = int(
    BloodPressureMeasurementFlags.MEASUREMENT_STATUS_PRESENT
)
# User ID 0xFF: "Unknown User" (GSS 3.31.2.5, after User Data Service 1.0).
UNKNOWN_USER: Final = 0xFF


@dataclass(frozen=True)
class _Frame:
    """The fields Blood Pressure Measurement and Intermediate Cuff Pressure share."""

    unit: PressureUnit
    compound: tuple[float, float, float]
    timestamp: datetime | None
    pulse_rate: float | None
    user_id: int | None
    status: MeasurementStatus | None


def _read_frame(characteristic: str, data: bytes | bytearray | memoryview) -> _Frame:
    reader = _Reader(characteristic, data)
    raw_flags = reader.uint("flags", 1)
    if raw_flags & _BPM_FLAGS_RFU:
        raise reader.error(
            "flags",
            f"reserved bits {raw_flags & _BPM_FLAGS_RFU:#04x} set; the fields they add are "
            f"unknown, so the rest of the value cannot be read",
            0,
        )
    flags = raw_flags  # a plain int: enum arithmetic is slow on this hot path
    unit = PressureUnit.KPA if flags & _BPM_UNITS_KPA else PressureUnit.MMHG
    compound = (
        reader.sfloat("systolic"),
        reader.sfloat("diastolic"),
        reader.sfloat("mean arterial pressure"),
    )
    timestamp = None
    if flags & _BPM_TIME_STAMP_PRESENT:
        timestamp = DateTime._read(reader, "time stamp ").datetime
    pulse_rate = None
    if flags & _BPM_PULSE_RATE_PRESENT:
        pulse_rate = reader.sfloat("pulse rate")
    user_id = None
    if flags & _BPM_USER_ID_PRESENT:
        user_id = reader.uint("user id", 1)
    status = None
    if flags & _BPM_MEASUREMENT_STATUS_PRESENT:
        status = MeasurementStatus(reader.uint("measurement status", 2))
    reader.end()
    return _Frame(unit, compound, timestamp, pulse_rate, user_id, status)


def _write_frame(frame: _Frame) -> bytes:
    flags = BloodPressureMeasurementFlags(0)
    body = b"".join(encode_sfloat(v).to_bytes(2, "little") for v in frame.compound)
    if frame.unit is PressureUnit.KPA:
        flags |= BloodPressureMeasurementFlags.UNITS_KPA
    if frame.timestamp is not None:
        flags |= BloodPressureMeasurementFlags.TIME_STAMP_PRESENT
        body += bytes(DateTime.from_datetime(frame.timestamp))
    if frame.pulse_rate is not None:
        flags |= BloodPressureMeasurementFlags.PULSE_RATE_PRESENT
        body += encode_sfloat(frame.pulse_rate).to_bytes(2, "little")
    if frame.user_id is not None:
        flags |= BloodPressureMeasurementFlags.USER_ID_PRESENT
        body += bytes((frame.user_id,))
    if frame.status is not None:
        flags |= BloodPressureMeasurementFlags.MEASUREMENT_STATUS_PRESENT
        body += int(frame.status).to_bytes(2, "little")
    return bytes((flags,)) + body


def _validate_common(
    target: object,
    timestamp: datetime | None,
    pulse_rate: float | None,
    user_id: int | None,
    status: MeasurementStatus | int | None,
) -> None:
    """Shared __post_init__ checks; normalises ``unit`` and ``status`` to their enums."""
    unit = getattr(target, "unit")  # noqa: B009 - both dataclasses carry it
    if not isinstance(unit, PressureUnit):
        try:
            object.__setattr__(target, "unit", PressureUnit(unit))
        except ValueError:
            raise ValueError(f"unit must be 'mmHg' or 'kPa', got {unit!r}") from None
    _check_timestamp("timestamp", timestamp)
    if pulse_rate is not None:
        _check_sfloat("pulse_rate", pulse_rate)
    if user_id is not None:
        _check_range("user_id", user_id, 0, 0xFF)
    if status is not None:
        _check_range("status", int(status), 0, 0xFFFF)
        if type(status) is not MeasurementStatus:
            object.__setattr__(target, "status", MeasurementStatus(int(status)))


@dataclass(frozen=True)
class BloodPressureMeasurement:
    """Blood Pressure Measurement (0x2A35, GSS 3.31): one completed cuff reading.

    Pressures are in ``unit``; ``pressures_mmhg`` converts. ``timestamp`` is the cuff's own
    naive local clock (None when absent or when the cuff sent an unknown date).
    ``user_id`` 255 is the spec's "unknown user" and is kept as 255 so it round-trips.
    """

    unit: PressureUnit
    systolic: float
    diastolic: float
    mean_arterial_pressure: float
    timestamp: datetime | None = None
    pulse_rate: float | None = None
    user_id: int | None = None
    status: MeasurementStatus | None = None

    CHARACTERISTIC: ClassVar[str] = "Blood Pressure Measurement"
    UUID: ClassVar[int] = gatt.BLOOD_PRESSURE_MEASUREMENT

    def __post_init__(self) -> None:
        _check_sfloat("systolic", self.systolic)
        _check_sfloat("diastolic", self.diastolic)
        _check_sfloat("mean_arterial_pressure", self.mean_arterial_pressure)
        _validate_common(self, self.timestamp, self.pulse_rate, self.user_id, self.status)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Self:
        frame = _read_frame(cls.CHARACTERISTIC, data)
        systolic, diastolic, mean_arterial_pressure = frame.compound
        try:
            return cls(
                frame.unit,
                systolic,
                diastolic,
                mean_arterial_pressure,
                frame.timestamp,
                frame.pulse_rate,
                frame.user_id,
                frame.status,
            )
        except ValueError as error:  # a safety net: the reader validates field by field
            raise MalformedPayload(cls.CHARACTERISTIC, "value", 0, str(error)) from None

    def __bytes__(self) -> bytes:
        return _write_frame(
            _Frame(
                self.unit,
                (self.systolic, self.diastolic, self.mean_arterial_pressure),
                self.timestamp,
                self.pulse_rate,
                self.user_id,
                self.status,
            )
        )

    @property
    def pressures_mmhg(self) -> tuple[float, float, float]:
        """(systolic, diastolic, mean arterial pressure) in mmHg, converted from kPa once."""
        return (
            _to_mmhg(self.systolic, self.unit),
            _to_mmhg(self.diastolic, self.unit),
            _to_mmhg(self.mean_arterial_pressure, self.unit),
        )

    @property
    def user_known(self) -> bool:
        """False when no user id was sent or it is 0xFF, "unknown user"."""
        return self.user_id is not None and self.user_id != UNKNOWN_USER

    @property
    def is_error_frame(self) -> bool:
        """A failed measurement as real cuffs report it: all pressures NaN, no status bits."""
        pressures_nan = all(
            math.isnan(v) for v in (self.systolic, self.diastolic, self.mean_arterial_pressure)
        )
        return pressures_nan and not self.status


@dataclass(frozen=True)
class IntermediateCuffPressure:
    """Intermediate Cuff Pressure (0x2A36, GSS 3.125): the live pressure while inflating.

    Same layout as Blood Pressure Measurement; the cuff pressure rides in the systolic
    field and diastolic / MAP are sent as NaN. A decoder ignores whatever a cuff puts in
    those two fields: they carry nothing by definition.
    """

    unit: PressureUnit
    cuff_pressure: float
    timestamp: datetime | None = None
    pulse_rate: float | None = None
    user_id: int | None = None
    status: MeasurementStatus | None = None

    CHARACTERISTIC: ClassVar[str] = "Intermediate Cuff Pressure"
    UUID: ClassVar[int] = gatt.INTERMEDIATE_CUFF_PRESSURE

    def __post_init__(self) -> None:
        _check_sfloat("cuff_pressure", self.cuff_pressure)
        _validate_common(self, self.timestamp, self.pulse_rate, self.user_id, self.status)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Self:
        frame = _read_frame(cls.CHARACTERISTIC, data)
        try:
            return cls(
                frame.unit,
                frame.compound[0],
                frame.timestamp,
                frame.pulse_rate,
                frame.user_id,
                frame.status,
            )
        except ValueError as error:
            raise MalformedPayload(cls.CHARACTERISTIC, "value", 0, str(error)) from None

    def __bytes__(self) -> bytes:
        return _write_frame(
            _Frame(
                self.unit,
                (self.cuff_pressure, math.nan, math.nan),
                self.timestamp,
                self.pulse_rate,
                self.user_id,
                self.status,
            )
        )

    @property
    def cuff_pressure_mmhg(self) -> float:
        return _to_mmhg(self.cuff_pressure, self.unit)

    @property
    def user_known(self) -> bool:
        return self.user_id is not None and self.user_id != UNKNOWN_USER


# --- Blood Pressure Feature (GSS 3.30, 0x2A49) ---------------------------------------


class BloodPressureFeature(IntFlag):
    """Blood Pressure Feature (0x2A49, GSS 3.30), 16 bits; bits 9-15 RFU are kept.

    Decode with ``BloodPressureFeature.from_bytes(data)`` (little-endian, exactly 2 bytes,
    MalformedPayload otherwise); encode with ``bytes(feature)``.
    """

    BODY_MOVEMENT_DETECTION = 0x0001
    CUFF_FIT_DETECTION = 0x0002
    IRREGULAR_PULSE_DETECTION = 0x0004
    PULSE_RATE_RANGE_DETECTION = 0x0008
    MEASUREMENT_POSITION_DETECTION = 0x0010
    MULTIPLE_BOND = 0x0020
    E2E_CRC = 0x0040  # BPS 1.1
    USER_DATA_SERVICE = 0x0080  # BPS 1.1
    USER_FACING_TIME = 0x0100  # BPS 1.1

    @classmethod
    def from_bytes(  # type: ignore[override]
        cls,
        data: bytes | bytearray | memoryview,
        byteorder: Literal["little", "big"] = "little",
        *,
        signed: bool = False,
    ) -> Self:
        """Decode the characteristic value (the int.from_bytes arguments are ignored)."""
        reader = _Reader("Blood Pressure Feature", data)
        value = reader.uint("features", 2)
        reader.end()
        return cls(value)

    def __bytes__(self) -> bytes:
        return int(self).to_bytes(2, "little")


# --- Current Time (CTS 1.1 / GSS 3.62, 0x2A2B) --------------------------------------------


class AdjustReason(IntFlag):
    """Current Time "Adjust Reason" (GSS 3.62.2.4); bits 4-7 RFU are kept."""

    MANUAL_TIME_UPDATE = 0x01
    EXTERNAL_REFERENCE_TIME_UPDATE = 0x02
    CHANGE_OF_TIME_ZONE = 0x04
    CHANGE_OF_DST = 0x08


_NO_ADJUSTMENT: Final = AdjustReason(0)


@dataclass(frozen=True)
class CurrentTime:
    """Current Time (0x2A2B), 10 bytes: Exact Time 256 (Day Date Time + Fractions256) and
    Adjust Reason. ``day_of_week`` is 1 = Monday .. 7 = Sunday, 0 = unknown (GSS 3.72)."""

    date_time: DateTime
    day_of_week: int = 0
    fractions256: int = 0
    adjust_reason: AdjustReason = _NO_ADJUSTMENT

    CHARACTERISTIC: ClassVar[str] = "Current Time"
    UUID: ClassVar[int] = gatt.CURRENT_TIME

    def __post_init__(self) -> None:
        if not isinstance(self.date_time, DateTime):
            raise ValueError(f"date_time must be a DateTime, got {self.date_time!r}")
        _check_range("day_of_week", self.day_of_week, 0, 7)
        _check_range("fractions256", self.fractions256, 0, 255)
        _check_range("adjust_reason", int(self.adjust_reason), 0, 0xFF)
        object.__setattr__(self, "adjust_reason", AdjustReason(int(self.adjust_reason)))

    @classmethod
    def from_datetime(cls, value: _WallClock, adjust_reason: AdjustReason = _NO_ADJUSTMENT) -> Self:
        """The wall-clock fields of ``value`` (an aware datetime in its own zone), to set a
        cuff's clock: convert to the clinic's local time first, cuffs display what they get.
        """
        return cls(
            DateTime.from_datetime(value),
            value.isoweekday(),
            value.microsecond * 256 // 1_000_000,
            adjust_reason,
        )

    @property
    def datetime(self) -> _WallClock | None:
        """Naive wall-clock datetime (1/256 s resolution), None when the date is unknown."""
        whole = self.date_time.datetime
        if whole is None:
            return None
        return whole.replace(microsecond=self.fractions256 * 1_000_000 // 256)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Self:
        reader = _Reader(cls.CHARACTERISTIC, data)
        date_time = DateTime._read(reader, "")
        offset = reader.offset
        day_of_week = reader.uint("day of week", 1)
        if day_of_week > 7:
            raise reader.error("day of week", f"{day_of_week} is not 0..7", offset)
        fractions256 = reader.uint("fractions256", 1)
        adjust_reason = AdjustReason(reader.uint("adjust reason", 1))
        reader.end()
        return cls(date_time, day_of_week, fractions256, adjust_reason)

    def __bytes__(self) -> bytes:
        return bytes(self.date_time) + bytes(
            (self.day_of_week, self.fractions256, int(self.adjust_reason))
        )


# --- Battery Level (BAS 1.0 / GSS 3.27, 0x2A19) -------------------------------------------


@dataclass(frozen=True)
class BatteryLevel:
    """Battery Level (0x2A19): percent of full charge, 0..100 (101..255 RFU, GSS 3.27)."""

    level: int

    CHARACTERISTIC: ClassVar[str] = "Battery Level"
    UUID: ClassVar[int] = gatt.BATTERY_LEVEL

    def __post_init__(self) -> None:
        _check_range("level", self.level, 0, 100)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Self:
        reader = _Reader(cls.CHARACTERISTIC, data)
        level = reader.uint("level", 1)
        if level > 100:
            raise reader.error("level", f"{level}% is beyond 100 (101..255 are RFU)", 0)
        reader.end()
        return cls(level)

    def __bytes__(self) -> bytes:
        return bytes((self.level,))


# --- Record Access Control Point (GSS 3.187 "Record Access Control Point", 0x2A52) ---------
# Used by Blood Pressure Service 1.1 (section 3.5) to report, count, delete and abort the
# stored Blood Pressure Records. Layout: Op Code (uint8), Operator (uint8), Operand.


class RacpOpCode(IntEnum):
    """RACP op codes (GSS, Record Access Control Point, Op Code field)."""

    REPORT_STORED_RECORDS = 0x01
    DELETE_STORED_RECORDS = 0x02
    ABORT_OPERATION = 0x03
    REPORT_NUMBER_OF_STORED_RECORDS = 0x04
    NUMBER_OF_STORED_RECORDS_RESPONSE = 0x05
    RESPONSE_CODE = 0x06
    COMBINED_REPORT = 0x07
    COMBINED_REPORT_RESPONSE = 0x08


class RacpOperator(IntEnum):
    """RACP operators (GSS, Record Access Control Point, Operator field)."""

    NULL = 0x00
    ALL = 0x01
    LESS_THAN_OR_EQUAL = 0x02
    GREATER_THAN_OR_EQUAL = 0x03
    WITHIN_RANGE = 0x04
    FIRST = 0x05
    LAST = 0x06


class RacpFilterType(IntEnum):
    """First byte of a filtering operand. Blood Pressure Records are filtered by their
    uint16 sequence number (BPS 1.1, 3.5.1)."""

    SEQUENCE_NUMBER = 0x01


class RacpResponseCode(IntEnum):
    """Response Code Values (GSS, Record Access Control Point, Operand of op code 0x06)."""

    SUCCESS = 0x01
    OP_CODE_NOT_SUPPORTED = 0x02
    INVALID_OPERATOR = 0x03
    OPERATOR_NOT_SUPPORTED = 0x04
    INVALID_OPERAND = 0x05
    NO_RECORDS_FOUND = 0x06
    ABORT_UNSUCCESSFUL = 0x07
    PROCEDURE_NOT_COMPLETED = 0x08
    OPERAND_NOT_SUPPORTED = 0x09


_RACP: Final = "Record Access Control Point"
# Op codes a client writes that act on a selection of records.
_RACP_RECORD_OP_CODES: Final = frozenset(
    {
        RacpOpCode.REPORT_STORED_RECORDS,
        RacpOpCode.DELETE_STORED_RECORDS,
        RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS,
        RacpOpCode.COMBINED_REPORT,
    }
)
_RACP_BOUNDS: Final = {
    RacpOperator.ALL: (False, False),
    RacpOperator.FIRST: (False, False),
    RacpOperator.LAST: (False, False),
    RacpOperator.LESS_THAN_OR_EQUAL: (False, True),
    RacpOperator.GREATER_THAN_OR_EQUAL: (True, False),
    RacpOperator.WITHIN_RANGE: (True, True),
}


@dataclass(frozen=True)
class RacpResponse:
    """RACP "Response Code" indication (op code 0x06, operator Null): the outcome of the
    request whose op code it names. ``request_op_code`` stays a plain int when a client
    sent an op code we do not know (the answer is then OP_CODE_NOT_SUPPORTED)."""

    request_op_code: RacpOpCode | int
    response_code: RacpResponseCode

    def __post_init__(self) -> None:
        _check_range("request_op_code", int(self.request_op_code), 0, 0xFF)
        try:
            object.__setattr__(self, "request_op_code", RacpOpCode(self.request_op_code))
        except ValueError:
            object.__setattr__(self, "request_op_code", int(self.request_op_code))
        object.__setattr__(self, "response_code", RacpResponseCode(self.response_code))

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Self:
        reader = _Reader(_RACP, data)
        _expect_racp_header(reader, RacpOpCode.RESPONSE_CODE)
        request_op_code = reader.uint("request op code", 1)
        offset = reader.offset
        raw_code = reader.uint("response code value", 1)
        reader.end()
        try:
            code = RacpResponseCode(raw_code)
        except ValueError:
            raise reader.error(
                "response code value", f"{raw_code:#04x} is not a defined response code", offset
            ) from None
        return cls(request_op_code, code)

    def __bytes__(self) -> bytes:
        return bytes(
            (
                RacpOpCode.RESPONSE_CODE,
                RacpOperator.NULL,
                int(self.request_op_code),
                self.response_code,
            )
        )

    @property
    def succeeded(self) -> bool:
        return self.response_code is RacpResponseCode.SUCCESS


@dataclass(frozen=True)
class RacpNumberOfRecords:
    """RACP "Number of Stored Records Response" (op code 0x05) or, with
    ``combined_report``, the "Combined Report Response" (0x08) that ends a Combined Report.

    The count is a uint16 (BPS sequence numbers are uint16); a 4-byte (uint32) operand, as
    some services use, is accepted on decode, and counts above 0xFFFF encode as uint32.
    """

    count: int
    combined_report: bool = False

    def __post_init__(self) -> None:
        _check_range("count", self.count, 0, 0xFFFF_FFFF)

    @property
    def op_code(self) -> RacpOpCode:
        if self.combined_report:
            return RacpOpCode.COMBINED_REPORT_RESPONSE
        return RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Self:
        reader = _Reader(_RACP, data)
        op_code = _expect_racp_header(
            reader,
            RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE,
            RacpOpCode.COMBINED_REPORT_RESPONSE,
        )
        size = 4 if reader.remaining() == 4 else 2
        count = reader.uint("number of records", size)
        reader.end()
        return cls(count, combined_report=op_code is RacpOpCode.COMBINED_REPORT_RESPONSE)

    def __bytes__(self) -> bytes:
        size = 2 if self.count <= 0xFFFF else 4
        return bytes((self.op_code, RacpOperator.NULL)) + self.count.to_bytes(size, "little")


RacpIndication = RacpResponse | RacpNumberOfRecords


def decode_racp_indication(data: bytes | bytearray | memoryview) -> RacpIndication:
    """Decode what a server indicates on the RACP: a response code or a record count."""
    reader = _Reader(_RACP, data)
    op_code = reader.uint("op code", 1)
    if op_code == RacpOpCode.RESPONSE_CODE:
        return RacpResponse.from_bytes(data)
    if op_code in (
        RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE,
        RacpOpCode.COMBINED_REPORT_RESPONSE,
    ):
        return RacpNumberOfRecords.from_bytes(data)
    raise reader.error("op code", f"{op_code:#04x} is not a response a server indicates", 0)


def _expect_racp_header(reader: _Reader, *op_codes: RacpOpCode) -> RacpOpCode:
    raw = reader.uint("op code", 1)
    if raw not in op_codes:
        expected = " or ".join(f"{c:#04x}" for c in op_codes)
        raise reader.error("op code", f"expected {expected}, got {raw:#04x}", 0)
    operator = reader.uint("operator", 1)
    if operator != RacpOperator.NULL:
        raise reader.error("operator", f"responses carry the Null operator, got {operator:#04x}", 1)
    return RacpOpCode(raw)


class RacpRequestRejected(MalformedPayload):
    """A RACP write the server must refuse; ``response`` is the indication to send back."""

    def __init__(self, response: RacpResponse, field: str, offset: int, reason: str) -> None:
        super().__init__(_RACP, field, offset, reason)
        self.response = response


@dataclass(frozen=True)
class RacpRequest:
    """A RACP write from the client (op codes 1-4 and 7).

    Records are selected by ``operator``: ALL, FIRST, LAST take no bounds;
    LESS_THAN_OR_EQUAL takes ``max_sequence_number``; GREATER_THAN_OR_EQUAL takes
    ``min_sequence_number``; WITHIN_RANGE takes both (min <= max). ABORT_OPERATION takes
    the Null operator and no bounds. A bound goes on the wire as filter type 0x01
    (sequence number) followed by a uint16 per bound (BPS 1.1, 3.5.1).
    """

    op_code: RacpOpCode
    operator: RacpOperator
    min_sequence_number: int | None = None
    max_sequence_number: int | None = None

    def __post_init__(self) -> None:
        op_code = RacpOpCode(self.op_code)
        operator = RacpOperator(self.operator)
        object.__setattr__(self, "op_code", op_code)
        object.__setattr__(self, "operator", operator)
        low, high = self.min_sequence_number, self.max_sequence_number
        if op_code is RacpOpCode.ABORT_OPERATION:
            if operator is not RacpOperator.NULL or low is not None or high is not None:
                raise ValueError("ABORT_OPERATION takes the NULL operator and no operand")
            return
        if op_code not in _RACP_RECORD_OP_CODES:
            raise ValueError(f"{op_code.name} is a server response, not a request")
        if operator is RacpOperator.NULL:
            raise ValueError(f"{op_code.name} needs an operator other than NULL")
        wants_low, wants_high = _RACP_BOUNDS[operator]
        if (low is not None) != wants_low or (high is not None) != wants_high:
            wanted = [
                name
                for name, needed in (
                    ("min_sequence_number", wants_low),
                    ("max_sequence_number", wants_high),
                )
                if needed
            ]
            raise ValueError(f"{operator.name} takes {' and '.join(wanted) or 'no bounds'}")
        for name, bound in (("min_sequence_number", low), ("max_sequence_number", high)):
            if bound is not None:
                _check_range(name, bound, 0, 0xFFFF)
        if low is not None and high is not None and low > high:
            raise ValueError(f"min_sequence_number {low} exceeds max_sequence_number {high}")

    # Convenience constructors for the requests a collector actually sends.
    @classmethod
    def report_all(cls) -> Self:
        return cls(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.ALL)

    @classmethod
    def report_from(cls, sequence_number: int) -> Self:
        """Records with sequence number >= ``sequence_number``: the ones not yet collected."""
        return cls(
            RacpOpCode.REPORT_STORED_RECORDS,
            RacpOperator.GREATER_THAN_OR_EQUAL,
            min_sequence_number=sequence_number,
        )

    @classmethod
    def count_all(cls) -> Self:
        return cls(RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS, RacpOperator.ALL)

    @classmethod
    def abort(cls) -> Self:
        return cls(RacpOpCode.ABORT_OPERATION, RacpOperator.NULL)

    def select(self, sequence_numbers: Iterable[int]) -> list[int]:
        """The stored sequence numbers this request addresses, in ascending order (for a
        server). FIRST / LAST mean the lowest / highest sequence number (the oldest and
        newest record: BPS sequence numbers only grow until they wrap)."""
        ordered = sorted(set(sequence_numbers))
        low = self.min_sequence_number
        high = self.max_sequence_number
        match self.operator:
            case RacpOperator.ALL:
                return ordered
            case RacpOperator.FIRST:
                return ordered[:1]
            case RacpOperator.LAST:
                return ordered[-1:]
            case RacpOperator.LESS_THAN_OR_EQUAL:
                return [n for n in ordered if high is not None and n <= high]
            case RacpOperator.GREATER_THAN_OR_EQUAL:
                return [n for n in ordered if low is not None and n >= low]
            case RacpOperator.WITHIN_RANGE:
                return [
                    n for n in ordered if low is not None and high is not None and low <= n <= high
                ]
            case _:
                return []

    def __bytes__(self) -> bytes:
        head = bytes((self.op_code, self.operator))
        bounds = [b for b in (self.min_sequence_number, self.max_sequence_number) if b is not None]
        if not bounds:
            return head
        return (
            head
            + bytes((RacpFilterType.SEQUENCE_NUMBER,))
            + b"".join(b.to_bytes(2, "little") for b in bounds)
        )

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Self:
        """Decode a RACP write; raises RacpRequestRejected (a MalformedPayload) naming the
        field, offset and the response code a server owes the client."""
        reader = _Reader(_RACP, data)

        def reject(code: RacpResponseCode, op: int, field: str, off: int, why: str) -> NoReturn:
            raise RacpRequestRejected(RacpResponse(op, code), field, off, why)

        if reader.remaining() == 0:
            reject(RacpResponseCode.OP_CODE_NOT_SUPPORTED, 0, "op code", 0, "empty write")
        raw_op = reader.uint("op code", 1)
        if raw_op not in _RACP_RECORD_OP_CODES and raw_op != RacpOpCode.ABORT_OPERATION:
            reject(
                RacpResponseCode.OP_CODE_NOT_SUPPORTED,
                raw_op,
                "op code",
                0,
                f"{raw_op:#04x} is not a request op code",
            )
        op_code = RacpOpCode(raw_op)
        if reader.remaining() == 0:
            reject(RacpResponseCode.INVALID_OPERATOR, raw_op, "operator", 1, "missing")
        raw_operator = reader.uint("operator", 1)
        if op_code is RacpOpCode.ABORT_OPERATION:
            if raw_operator != RacpOperator.NULL:
                reject(
                    RacpResponseCode.INVALID_OPERATOR,
                    raw_op,
                    "operator",
                    1,
                    f"ABORT_OPERATION takes the Null operator, got {raw_operator:#04x}",
                )
            if reader.remaining():
                reject(RacpResponseCode.INVALID_OPERAND, raw_op, "operand", 2, "abort takes none")
            return cls(op_code, RacpOperator.NULL)
        if raw_operator not in _RACP_BOUNDS:
            reject(
                RacpResponseCode.INVALID_OPERATOR,
                raw_op,
                "operator",
                1,
                f"{raw_operator:#04x} is not an operator for {op_code.name}",
            )
        operator = RacpOperator(raw_operator)
        wants_low, wants_high = _RACP_BOUNDS[operator]
        bound_count = int(wants_low) + int(wants_high)
        if bound_count == 0:
            if reader.remaining():
                reject(
                    RacpResponseCode.INVALID_OPERAND,
                    raw_op,
                    "operand",
                    2,
                    f"{operator.name} takes no operand, got {reader.remaining()} byte(s)",
                )
            return cls(op_code, operator)
        if reader.remaining() == 0:
            reject(RacpResponseCode.INVALID_OPERAND, raw_op, "filter type", 2, "missing")
        filter_type = reader.uint("filter type", 1)
        if filter_type != RacpFilterType.SEQUENCE_NUMBER:
            reject(
                RacpResponseCode.OPERAND_NOT_SUPPORTED,
                raw_op,
                "filter type",
                2,
                f"{filter_type:#04x}; only 0x01 (sequence number) is supported",
            )
        if reader.remaining() != 2 * bound_count:
            reject(
                RacpResponseCode.INVALID_OPERAND,
                raw_op,
                "filter parameters",
                3,
                f"{operator.name} takes {2 * bound_count} bytes of uint16 sequence numbers, "
                f"got {reader.remaining()}",
            )
        first = reader.uint("filter parameter", 2)
        second = reader.uint("filter parameter", 2) if bound_count == 2 else None
        if second is not None and first > second:
            reject(
                RacpResponseCode.INVALID_OPERAND,
                raw_op,
                "filter parameters",
                3,
                f"range {first}..{second} is empty (min > max)",
            )
        if operator is RacpOperator.LESS_THAN_OR_EQUAL:
            return cls(op_code, operator, max_sequence_number=first)
        if operator is RacpOperator.GREATER_THAN_OR_EQUAL:
            return cls(op_code, operator, min_sequence_number=first)
        return cls(op_code, operator, min_sequence_number=first, max_sequence_number=second)

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> Self | RacpResponse:
        """For a server: the request, or the RacpResponse to indicate when it is invalid
        (op code not supported, invalid operator, invalid or unsupported operand)."""
        try:
            return cls.from_bytes(data)
        except RacpRequestRejected as rejected:
            return rejected.response


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
class EnhancedBloodPressureMeasurement:
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

    @property
    def pressures_mmhg(self) -> tuple[float, float, float]:
        """(systolic, diastolic, mean arterial pressure) in mmHg, converted from kPa once."""
        return (
            _to_mmhg(self.systolic, self.unit),
            _to_mmhg(self.diastolic, self.unit),
            _to_mmhg(self.mean_arterial_pressure, self.unit),
        )

    @property
    def user_known(self) -> bool:
        return self.user_id is not None and self.user_id != UNKNOWN_USER

    @property
    def is_error_frame(self) -> bool:
        """A failed measurement: all pressures NaN and no status bits (as for 0x2A35)."""
        pressures_nan = all(
            math.isnan(v) for v in (self.systolic, self.diastolic, self.mean_arterial_pressure)
        )
        return pressures_nan and not self.status


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

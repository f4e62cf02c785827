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
here, for everything downstream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import IntEnum, IntFlag, StrEnum
from typing import ClassVar, Final, Literal, Self

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

    def rest(self) -> bytes:
        chunk = self.data[self.offset :]
        self.offset = len(self.data)
        return chunk

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
    # repr() is the shortest decimal that reads back as the same double.
    sign, digits, exp = Decimal(repr(float(value))).as_tuple()
    assert isinstance(exp, int)  # finite values only from here on
    mantissa = int("".join(map(str, digits)) or "0")
    if mantissa == 0:
        return 0
    while mantissa % 10 == 0:
        mantissa //= 10
        exp += 1
    # Prefer exponent 0 for whole numbers (120 -> 120e0, not 12e1) while the mantissa fits.
    while exp > 0 and abs(mantissa * 10) <= _SFLOAT_MANTISSA_MAX:
        mantissa *= 10
        exp -= 1
    if sign:
        mantissa = -mantissa
    if not _sfloat_fits(mantissa, exp):
        raise ValueError(
            f"{value!r} cannot be carried exactly by an SFLOAT "
            f"(needs mantissa {mantissa} x 10^{exp}; mantissa -2048..2047, exponent -8..7)"
        )
    return ((exp & 0xF) << 12) | (mantissa & 0x0FFF)


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
    flags = BloodPressureMeasurementFlags(raw_flags)
    unit = (
        PressureUnit.KPA if flags & BloodPressureMeasurementFlags.UNITS_KPA else PressureUnit.MMHG
    )
    compound = (
        reader.sfloat("systolic"),
        reader.sfloat("diastolic"),
        reader.sfloat("mean arterial pressure"),
    )
    timestamp = None
    if flags & BloodPressureMeasurementFlags.TIME_STAMP_PRESENT:
        timestamp = DateTime._read(reader, "time stamp ").datetime
    pulse_rate = None
    if flags & BloodPressureMeasurementFlags.PULSE_RATE_PRESENT:
        pulse_rate = reader.sfloat("pulse rate")
    user_id = None
    if flags & BloodPressureMeasurementFlags.USER_ID_PRESENT:
        user_id = reader.uint("user id", 1)
    status = None
    if flags & BloodPressureMeasurementFlags.MEASUREMENT_STATUS_PRESENT:
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

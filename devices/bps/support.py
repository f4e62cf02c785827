"""Shared building blocks of the Blood Pressure Service codec: the decode error,
the byte reader, SFLOAT, units, measurement status and the Date Time value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum, IntFlag, StrEnum
from typing import ClassVar, Final, Self


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

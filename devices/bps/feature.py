"""Blood Pressure Feature (0x2A49), Current Time (0x2A2B) and Battery Level (0x2A19) values."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag
from typing import ClassVar, Final, Literal, Self

from devices import gatt

# --- Errors ------------------------------------------------------------------------
from devices.bps.support import DateTime, _check_range, _Reader, _WallClock

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

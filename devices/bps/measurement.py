"""Blood Pressure Measurement (0x2A35) and Intermediate Cuff Pressure (0x2A36) values."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import IntFlag
from typing import ClassVar, Final, Self

from devices import gatt

# --- Errors ------------------------------------------------------------------------
from devices.bps.support import (
    DateTime,
    MalformedPayload,
    MeasurementStatus,
    PressureUnit,
    _check_range,
    _check_sfloat,
    _check_timestamp,
    _Reader,
    _to_mmhg,
    encode_sfloat,
)

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


class CompoundPressures:
    """What 0x2A35 and 0x2B34 share: the compound pressure in a unit, a user id, a status.

    Both measurements are frozen dataclasses; this base only reads their fields.
    """

    unit: PressureUnit
    systolic: float
    diastolic: float
    mean_arterial_pressure: float
    user_id: int | None
    status: MeasurementStatus | None

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
class BloodPressureMeasurement(CompoundPressures):
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

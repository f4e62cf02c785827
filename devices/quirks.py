"""Per-model quirks: cuffs that break the Blood Pressure Service spec, and how we cope.

A quirk is matched on the cuff's Device Information (Manufacturer Name String 0x2A29 and
Model Number String 0x2A24, compared case-insensitively by prefix) and repairs a frame
into the spec layout before the strict codec in `devices.bps` reads it, so the codec
stays the one place that knows the spec and a standard cuff never goes through a repair.

Entry point others rely on: `decode_measurement(payload, manufacturer=..., model=...)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from devices.bps import (
    BloodPressureMeasurement,
    BloodPressureMeasurementFlags,
    IntermediateCuffPressure,
)

FrameRepair = Callable[[bytes], bytes]

# GSS 3.31.1: flags (1) + systolic, diastolic, MAP (3 x SFLOAT) + Date Time (7).
_COMPOUND_END = 1 + 3 * 2
_TIME_STAMP_SIZE = 7
_BM85_RESERVED_FLAG = 0x40  # flags bit 6, RFU in GSS 3.31.1


def _repair_beurer_bm85(frame: bytes) -> bytes:
    """Beurer BM85 frames into the GSS 3.31 layout.

    The BM85 sets reserved flag bit 6, sends a user byte without setting the User ID
    flag, and sends Pulse Rate and Measurement Status big-endian. A frame too short for
    what its flags announce is passed through unchanged (bar the flags) so the codec
    reports exactly where it ends.
    """
    if not frame:
        return frame
    flags = BloodPressureMeasurementFlags(frame[0] & ~_BM85_RESERVED_FLAG & 0xFF)
    out = bytearray(frame[:_COMPOUND_END])
    offset = _COMPOUND_END
    if flags & BloodPressureMeasurementFlags.TIME_STAMP_PRESENT:
        out += frame[offset : offset + _TIME_STAMP_SIZE]
        offset += _TIME_STAMP_SIZE
    if flags & BloodPressureMeasurementFlags.PULSE_RATE_PRESENT:
        out += frame[offset : offset + 2][::-1]
        offset += 2
    if offset < len(frame):
        # The user byte is always there, flagged or not.
        flags |= BloodPressureMeasurementFlags.USER_ID_PRESENT
        out += frame[offset : offset + 1]
        offset += 1
    if flags & BloodPressureMeasurementFlags.MEASUREMENT_STATUS_PRESENT:
        out += frame[offset : offset + 2][::-1]
        offset += 2
    out += frame[offset:]  # anything left over: the codec rejects trailing bytes
    out[0] = int(flags)
    return bytes(out)


@dataclass(frozen=True)
class CuffQuirks:
    """What is wrong with one family of cuffs, matched by DIS manufacturer/model prefix."""

    name: str
    manufacturer_prefix: str
    model_prefix: str
    repair_frame: FrameRepair | None = None

    def matches(self, manufacturer: str | None, model: str | None) -> bool:
        if manufacturer is None or model is None:
            return False
        return manufacturer.strip().casefold().startswith(
            self.manufacturer_prefix.casefold()
        ) and model.strip().casefold().startswith(self.model_prefix.casefold())

    def repair(self, frame: bytes) -> bytes:
        return self.repair_frame(frame) if self.repair_frame is not None else frame


NO_QUIRKS = CuffQuirks("standard", "", "")

BEURER_BM85 = CuffQuirks(
    "Beurer BM85 family: reserved flag bit 6, unflagged user byte, big-endian pulse and status",
    manufacturer_prefix="Beurer",
    model_prefix="BM85",
    repair_frame=_repair_beurer_bm85,
)

QUIRKS: tuple[CuffQuirks, ...] = (BEURER_BM85,)


def quirks_for(manufacturer: str | None, model: str | None) -> CuffQuirks:
    """The quirks of a cuff model, or `NO_QUIRKS` for a cuff that follows the spec."""
    for quirks in QUIRKS:
        if quirks.matches(manufacturer, model):
            return quirks
    return NO_QUIRKS


def decode_measurement(
    payload: bytes | bytearray, *, manufacturer: str | None, model: str | None
) -> BloodPressureMeasurement:
    """Decode a Blood Pressure Measurement (0x2A35), repairing it first if the model needs it.

    Raises `devices.bps.MalformedPayload` for a frame that is still off-spec.
    """
    frame = quirks_for(manufacturer, model).repair(bytes(payload))
    return BloodPressureMeasurement.from_bytes(frame)


def decode_intermediate_cuff_pressure(
    payload: bytes | bytearray, *, manufacturer: str | None, model: str | None
) -> IntermediateCuffPressure:
    """Decode an Intermediate Cuff Pressure (0x2A36): the same frame, the same repairs."""
    frame = quirks_for(manufacturer, model).repair(bytes(payload))
    return IntermediateCuffPressure.from_bytes(frame)

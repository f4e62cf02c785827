"""What the Bluetooth side tells the daemon: typed, immutable events.

Every time is a timezone-aware UTC datetime. Addresses are Bleak's form
(``AA:BB:CC:DD:EE:FF``). The supervisor awaits the daemon's ``on_event`` for each one;
a measurement counts as delivered only once that call returned (the daemon stores it
first).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from devices.bps import BloodPressureMeasurement

# MeasurementFailed's reason for a cuff's own error frame (as opposed to undecodable bytes).
ERROR_FRAME: Final = "error frame"


def _check_utc(owner: str, name: str, value: datetime) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{owner}.{name} must be a timezone-aware datetime, got {value!r}")
    if value.utcoffset():
        raise ValueError(f"{owner}.{name} must be in UTC, got offset {value.utcoffset()}")


@dataclass(frozen=True)
class CuffIdentity:
    """Who a cuff is, from its advertisement and Device Information Service (DIS 1.1)."""

    address: str
    name: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None


@dataclass(frozen=True)
class CuffSeen:
    """A cuff advertised (published on first sight, then at most every few seconds)."""

    address: str
    name: str | None
    rssi: int
    at: datetime

    def __post_init__(self) -> None:
        _check_utc("CuffSeen", "at", self.at)


@dataclass(frozen=True)
class CuffConnected:
    address: str
    at: datetime

    def __post_init__(self) -> None:
        _check_utc("CuffConnected", "at", self.at)


@dataclass(frozen=True)
class CuffBonded:
    """The link is encrypted with a bond: made on first contact or reused afterwards."""

    address: str
    at: datetime

    def __post_init__(self) -> None:
        _check_utc("CuffBonded", "at", self.at)


@dataclass(frozen=True)
class CuffDisconnected:
    """The link ended; ``reason`` says why in words (for the device status screen)."""

    address: str
    at: datetime
    reason: str

    def __post_init__(self) -> None:
        _check_utc("CuffDisconnected", "at", self.at)


@dataclass(frozen=True)
class BatteryChanged:
    """Battery Level (0x2A19) read on connection or notified, percent 0..100."""

    address: str
    level: int
    at: datetime

    def __post_init__(self) -> None:
        _check_utc("BatteryChanged", "at", self.at)


@dataclass(frozen=True)
class CuffPressureChanged:
    """Intermediate Cuff Pressure (0x2A36) while the cuff inflates: live only."""

    address: str
    pressure_mmhg: float
    at: datetime

    def __post_init__(self) -> None:
        _check_utc("CuffPressureChanged", "at", self.at)


@dataclass(frozen=True)
class MeasurementReceived:
    """One reading, delivered once per cuff + user + cuff timestamp.

    ``measured_at`` is the cuff's timestamp in UTC, corrected by the clock offset the link
    observed on the cuff, or ``received_at`` when the cuff sent no timestamp.
    ``sequence_number`` is the Blood Pressure Record's (BPS 1.1), None for a 0x2A35
    indication. ``raw`` is the payload as the cuff sent it. ``cuff_key`` names the
    reading by what the cuff sent (`devices.readings.cuff_key`): the same reading delivered
    again, by this daemon or a restarted one, has the same key, whatever we learnt about
    the cuff's clock meanwhile; the clinic stores one reading per (address, cuff_key).
    """

    cuff: CuffIdentity
    measurement: BloodPressureMeasurement
    measured_at: datetime
    received_at: datetime
    raw: bytes
    sequence_number: int | None = None
    cuff_key: str | None = None
    # Received as it was taken (the cuff inflated on this connection just before), not a
    # stored record replayed later; and whether the cuff's clock was read on this
    # connection, so that a stored record's stamp could be corrected (DESIGN.md "Time").
    live: bool = False
    clock_checked: bool = True

    def __post_init__(self) -> None:
        _check_utc("MeasurementReceived", "measured_at", self.measured_at)
        _check_utc("MeasurementReceived", "received_at", self.received_at)


@dataclass(frozen=True)
class MeasurementFailed:
    """The cuff reported a failed measurement (an error frame: all NaN, no status bits)
    or sent a value that cannot be decoded; ``raw`` keeps the bytes for the log.
    ``cuff_key`` names an error frame as for `MeasurementReceived` (None for bytes that
    cannot be decoded)."""

    cuff: CuffIdentity
    raw: bytes
    received_at: datetime
    reason: str = ERROR_FRAME
    cuff_key: str | None = None

    def __post_init__(self) -> None:
        _check_utc("MeasurementFailed", "received_at", self.received_at)


@dataclass(frozen=True)
class CuffUnreachable:
    """A cuff kept advertising but every connection to it failed for `since` to `at`
    (more than a minute by default): its readings stay in it. ``reason`` is the last
    failure, ``advice`` what a person can do (`devices.errors`). Published once per
    spell; `CuffReachable` ends it. The clinic raises a `cuff_offline` technical alert
    for a cuff of a chair in session."""

    address: str
    at: datetime
    since: datetime
    attempts: int
    reason: str
    advice: str

    def __post_init__(self) -> None:
        _check_utc("CuffUnreachable", "at", self.at)
        _check_utc("CuffUnreachable", "since", self.since)


@dataclass(frozen=True)
class CuffReachable:
    """A cuff that was `CuffUnreachable` was connected and set up again."""

    address: str
    at: datetime

    def __post_init__(self) -> None:
        _check_utc("CuffReachable", "at", self.at)


CuffEvent = (
    CuffSeen
    | CuffConnected
    | CuffBonded
    | CuffDisconnected
    | BatteryChanged
    | CuffPressureChanged
    | MeasurementReceived
    | MeasurementFailed
    | CuffUnreachable
    | CuffReachable
)

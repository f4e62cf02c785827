"""What a simulated cuff is configured as, and the record of each measurement it takes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal, get_args

from bumble import hci
from bumble.device import Connection

from devices.bps import (
    BloodPressureMeasurement,
    PressureUnit,
)
from simulators.frames import Quirk
from simulators.physiology import (
    MeasurementProblem,
    Patient,
    Profile,
    Reading,
)

SecurityMode = Literal["none", "just-works", "passkey", "refuse"]
RecordStyle = Literal["bps10", "bps11"]
Connectability = Literal["always", "brief", "windows"]
HANGS_UP: Final = ("brief", "windows")  # hang up `linger` after the records were read

# Advertising payload budget: 31 bytes (Core Vol 3 Part C 11). Flags (3), the 0x1810
# service list (4) and the appearance (4) leave 20 for the name's own 2-byte header + text.
MAX_LOCAL_NAME_BYTES: Final = 18
# A cuff's own clock after a battery change, until a central sets it (DESIGN.md,
# "Real cuffs": clocks are often wrong after a battery change).
DEFAULT_RESET_CLOCK: Final = datetime(2020, 1, 1, 0, 0)
# Battery drain (typical 4xAA cuff: a few hundred measurements per set of batteries).
IDLE_DRAIN_PERCENT_PER_HOUR: Final = 0.5
MEASUREMENT_DRAIN_PERCENT: Final = 0.25
# Lets the central's CCCD write response go out before the first replayed indication.
REPLAY_DELAY: Final = timedelta(milliseconds=200)
# Out of range looks like a supervision timeout to the central (Core Vol 1 Part F 2:
# 0x08 Connection Timeout); Bumble's virtual link has none, so the cuff sends it.
OUT_OF_RANGE_REASON: Final = hci.HCI_CONNECTION_TIMEOUT_ERROR
# Real Current Time Service servers refuse a time they cannot take (CTS 1.1, 3.1.2.1).
CTS_DATA_FIELD_IGNORED: Final = 0x80
SEQUENCE_NUMBER_MODULUS: Final = 0x10000  # uint16 (BPS 1.1, 3.5.1)


def _parse_random_static(address: str) -> hci.Address:
    try:
        parsed = hci.Address(address, hci.Address.RANDOM_DEVICE_ADDRESS)
    except (ValueError, TypeError) as error:
        raise ValueError(f"address {address!r} is not a Bluetooth address: {error}") from None
    # Random static: the two most significant bits are 1 (Core Vol 6 Part B 1.3.2.1).
    if bytes(parsed)[5] >> 6 != 0b11:
        raise ValueError(
            f"address {address!r} is not a random static address: its first byte must be "
            f"C0..FF (the two top bits set), e.g. D0:00:00:00:00:01"
        )
    return parsed


@dataclass(frozen=True)
class FlakyLink:
    """The cuff drops out of range for `lasting` once every `every` (simulated time)."""

    every: timedelta
    lasting: timedelta

    def __post_init__(self) -> None:
        if not timedelta(0) < self.lasting < self.every:
            raise ValueError(
                f"a flaky link needs 0 < lasting < every, got {self.lasting} and {self.every}"
            )


@dataclass(frozen=True)
class CuffConfig:
    """Everything that makes one simulated cuff what it is. Durations are simulated time.

    - `security`: "just-works" (default: the BP characteristics need an encrypted link,
      LE Secure Connections Just Works bonds), "passkey" (the central must enter
      `passkey`; a pairing without MITM protection is refused), "refuse" (the BP
      characteristics need an encrypted link, and every pairing request is refused, as
      by a cuff whose pairing memory is full) or "none".
    - `record_style`: "bps10" replays stored readings as Measurement indications, oldest
      first, when a central subscribes; "bps11" serves them through the RACP as Blood
      Pressure Records with sequence numbers.
    - `connectable`: "always", "brief" (advertises for `advertising_window` after a
      measurement and hangs up `linger` after its records were read) or "windows", as
      real cuffs do: advertises only for a short window after a measurement (and on
      start), `window_seconds` drawn per window, in real seconds whatever the clock's
      speed (radio time is not simulated), silent otherwise; hangs up as "brief" does.
    - `measurement_interval`: periodic measurements, the first `first_measurement_after`
      start; `problems` is cycled through those scheduled measurements.
    - `quirk`: None or "beurer-bm85" (see `simulators.frames.Quirk`).
    - the patient: `patient` if given, else drawn from `profile` (and `high_responder`)
      with `seed`; `dose_after` puts a dose that long after start.
    """

    address: str = "D0:00:00:00:00:01"
    local_name: str = "SIM-BP"
    manufacturer: str = "vitalsd simulator"
    model: str = "SIM-BP"
    serial: str = "SIM-0001"
    firmware: str = "1.0.0"
    security: SecurityMode = "just-works"
    passkey: int = 123456
    record_style: RecordStyle = "bps10"
    connectable: Connectability = "always"
    measurement_interval: timedelta | None = None
    first_measurement_after: timedelta = timedelta(minutes=1)
    problems: tuple[MeasurementProblem | None, ...] = ()
    quirk: Quirk | None = None
    unit: PressureUnit = PressureUnit.MMHG
    user_id: int | None = None
    profile: Profile = Profile.NORMOTENSIVE
    high_responder: bool | None = None
    patient: Patient | None = None
    seed: int = 0
    dose_after: timedelta | None = None
    flaky_link: FlakyLink | None = None
    reset_clock: datetime = DEFAULT_RESET_CLOCK
    battery_level: int = 90
    advertising_window: timedelta = timedelta(minutes=2)
    linger: timedelta = timedelta(seconds=5)
    window_seconds: tuple[float, float] = (1.0, 3.0)
    record_capacity: int = 200
    advertising_interval_ms: float = 100.0
    # False: no Current Time service (many cheap cuffs): nobody can read or set its clock.
    current_time_service: bool = True

    def __post_init__(self) -> None:
        _parse_random_static(self.address)
        if len(self.local_name.encode()) > MAX_LOCAL_NAME_BYTES:
            raise ValueError(
                f"local_name {self.local_name!r} is longer than {MAX_LOCAL_NAME_BYTES} bytes "
                f"and would not fit the advertisement"
            )
        for name, value, allowed in (
            ("security", self.security, get_args(SecurityMode)),
            ("record_style", self.record_style, get_args(RecordStyle)),
            ("connectable", self.connectable, get_args(Connectability)),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
        if not 0 <= self.passkey <= 999_999:
            raise ValueError(f"passkey must be six digits (0..999999), got {self.passkey}")
        if self.quirk is not None:
            try:
                object.__setattr__(self, "quirk", Quirk(self.quirk))
            except ValueError:
                known = ", ".join(q.value for q in Quirk)
                raise ValueError(f"unknown quirk {self.quirk!r}; known: {known}") from None
        object.__setattr__(self, "unit", PressureUnit(self.unit))
        object.__setattr__(self, "profile", Profile(self.profile))
        object.__setattr__(
            self,
            "problems",
            tuple(None if p is None else MeasurementProblem(p) for p in self.problems),
        )
        if self.measurement_interval is not None and self.measurement_interval <= timedelta(0):
            raise ValueError(f"measurement_interval must be positive: {self.measurement_interval}")
        if self.reset_clock.tzinfo is not None:
            raise ValueError("reset_clock is the cuff's naive wall clock: pass a naive datetime")
        if not 0 <= self.battery_level <= 100:
            raise ValueError(f"battery_level must be 0..100 %, got {self.battery_level}")
        low, high = self.window_seconds
        if not 0 < low <= high:
            raise ValueError(f"window_seconds must be 0 < low <= high, got {self.window_seconds}")
        if self.record_capacity < 1:
            raise ValueError(f"record_capacity must be at least 1, got {self.record_capacity}")
        if self.user_id is not None and not 0 <= self.user_id <= 0xFF:
            raise ValueError(f"user_id must be 0..255, got {self.user_id}")

    @property
    def bumble_address(self) -> hci.Address:
        return _parse_random_static(self.address)


@dataclass(frozen=True)
class MeasurementRecord:
    """One measurement the cuff took: the ground truth for delivery tests.

    `taken_at` is simulated UTC when the result was ready; `cuff_time` the cuff's own
    (possibly wrong) naive clock it was stamped with; `payload` the exact 0x2A35 bytes.
    """

    sequence_number: int
    taken_at: datetime
    cuff_time: datetime
    reading: Reading
    measurement: BloodPressureMeasurement
    payload: bytes

    @property
    def problem(self) -> MeasurementProblem | None:
        return self.reading.problem

    def describe(self) -> str:
        """One line for the log."""
        record = self
        reading = record.reading
        if reading.is_error:
            return f"seq {record.sequence_number}: error frame (measurement failed)"
        flags = f" [{reading.problem}]" if reading.problem else ""
        return (
            f"seq {record.sequence_number}: {reading.systolic:.0f}/{reading.diastolic:.0f} "
            f"mmHg, MAP {reading.mean_arterial_pressure:.0f}, pulse {reading.pulse_rate:.0f}"
            f"{flags}, stamped {record.cuff_time.isoformat()}"
        )


def battery_level(initial: int, elapsed: timedelta, measurements: int) -> int:
    """Percent left after `elapsed` powered time and `measurements` inflations (>= 1)."""
    hours = max(0.0, elapsed.total_seconds() / 3600)
    used = hours * IDLE_DRAIN_PERCENT_PER_HOUR + measurements * MEASUREMENT_DRAIN_PERCENT
    return max(1, min(initial, round(initial - used)))


def _reason_name(reason: int) -> str:
    try:
        return hci.HCI_ErrorCode(reason).name
    except ValueError:
        return f"reason {reason:#04x}"


class CuffNotRunning(RuntimeError):
    """The cuff was asked to act before `start()` or after `stop()`."""


@dataclass
class _Link:
    """What the cuff knows about one central connected to it."""

    connection: Connection
    gone: asyncio.Future[int]
    peer: str
    paired: bool = False

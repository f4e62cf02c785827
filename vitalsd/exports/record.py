"""A session as the exports see it: plain, frozen values, no ORM and no I/O.

The builders take these so they can be tested on values written by hand; `query` fills
them from the database. Pressures are mmHg (the codec converts kPa once, on the way in;
STYLE.md "Units are explicit"), pulse is beats per minute, times are tz-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from vitalsd.domain import Reading, ReadingFlag, ReadingSource, require_utc
from vitalsd.errors import InvalidInput


@dataclass(frozen=True)
class PatientRecord:
    """As far as the clinic entered it: any field but `id` may be unknown."""

    id: int
    identifier: str | None = None
    display_name: str | None = None
    date_of_birth: date | None = None


@dataclass(frozen=True)
class DeviceRecord:
    """A cuff, with what its Device Information service (0x180A) told us."""

    address: str
    name: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None


@dataclass(frozen=True)
class ReadingRecord:
    """One stored reading. `valid` is False for a failed measurement (no values)."""

    id: int
    measured_at: datetime
    systolic: float | None
    diastolic: float | None
    mean_arterial_pressure: float | None = None
    pulse_rate: float | None = None
    source: str = ReadingSource.CUFF.value
    device_address: str | None = None
    flags: tuple[str, ...] = ()
    valid: bool = True
    category: str | None = None
    failure_reason: str | None = None
    recorded_by: str | None = None
    session_id: int | None = None
    patient_id: int | None = None
    chair_id: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "measured_at", require_utc(self.measured_at, "measured_at"))
        if self.valid and (self.systolic is None or self.diastolic is None):
            raise InvalidInput(f"reading {self.id} is valid but lacks systolic or diastolic")

    def as_domain(self) -> Reading:
        """The rules' view of this reading (for thresholds and baselines)."""
        known = {flag.value for flag in ReadingFlag}
        return Reading(
            id=self.id,
            measured_at=self.measured_at,
            systolic=self.systolic,
            diastolic=self.diastolic,
            mean_arterial_pressure=self.mean_arterial_pressure,
            pulse_rate=self.pulse_rate,
            source=ReadingSource(self.source),
            flags=frozenset(ReadingFlag(f) for f in self.flags if f in known),
            valid=self.valid,
        )


@dataclass(frozen=True)
class DoseRecord:
    id: int
    drug: str
    amount_mg: float
    route: str
    given_at: datetime
    ended_at: datetime | None = None
    increase: bool = False
    flags: tuple[str, ...] = ()
    override_reason: str | None = None
    recorded_by: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "given_at", require_utc(self.given_at, "given_at"))


@dataclass(frozen=True)
class SideEffectRecord:
    id: int
    effect: str
    severity: int
    observed_at: datetime
    note: str | None = None
    recorded_by: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "observed_at", require_utc(self.observed_at, "observed_at"))


@dataclass(frozen=True)
class CheckRecord:
    """A check as last stored by the core (its state is the core's, not recomputed)."""

    id: int
    key: str
    kind: str
    label: str
    window_start: datetime | None
    window_end: datetime | None
    state: str
    satisfied_by: int | None = None
    waiver_reason: str | None = None
    waived_by: str | None = None
    waived_at: datetime | None = None
    required: bool = True


@dataclass(frozen=True)
class AlertRecord:
    id: int
    kind: str
    priority: str
    state: str
    message: str
    raised_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution_note: str | None = None
    escalated_at: datetime | None = None
    reading_id: int | None = None
    check_id: int | None = None
    unverified: bool = False


@dataclass(frozen=True)
class SessionRecord:
    """Everything the exports need about one dosing session, sorted by time."""

    id: int
    protocol: str
    started_at: datetime
    patient: PatientRecord
    protocol_toml: str = ""
    phase: str = ""
    course_session: int = 1
    started_by: str | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None
    close_reason: str | None = None
    chair_name: str | None = None
    devices: tuple[DeviceRecord, ...] = ()
    readings: tuple[ReadingRecord, ...] = ()
    doses: tuple[DoseRecord, ...] = ()
    checks: tuple[CheckRecord, ...] = ()
    alerts: tuple[AlertRecord, ...] = ()
    side_effects: tuple[SideEffectRecord, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "started_at", require_utc(self.started_at, "started_at"))
        if self.closed_at is not None:
            object.__setattr__(self, "closed_at", require_utc(self.closed_at, "closed_at"))
        object.__setattr__(
            self, "readings", tuple(sorted(self.readings, key=lambda r: (r.measured_at, r.id)))
        )
        object.__setattr__(
            self, "doses", tuple(sorted(self.doses, key=lambda d: (d.given_at, d.id)))
        )
        object.__setattr__(
            self,
            "side_effects",
            tuple(sorted(self.side_effects, key=lambda s: (s.observed_at, s.id))),
        )
        object.__setattr__(
            self, "alerts", tuple(sorted(self.alerts, key=lambda a: (a.raised_at, a.id)))
        )

    def device(self, address: str | None) -> DeviceRecord | None:
        for device in self.devices:
            if device.address == address:
                return device
        return None

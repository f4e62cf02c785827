"""The clinic's vocabulary: the values the rules reason about and the API shows.

Every string value here is part of the public interface (DESIGN.md "Interfaces"): the
REST API and the WebSocket events carry them verbatim.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from enum import StrEnum

from vitalsd.errors import InvalidInput


class Role(StrEnum):
    NURSE = "nurse"
    CLINICIAN = "clinician"
    ADMIN = "admin"


class Phase(StrEnum):
    """Where a dosing session stands."""

    CHECKED_IN = "checked_in"
    BASELINE = "baseline"
    DOSED = "dosed"
    OBSERVATION = "observation"
    CLOSED = "closed"


class Drug(StrEnum):
    KETAMINE = "ketamine"
    ESKETAMINE = "esketamine"
    OTHER = "other"


class Route(StrEnum):
    IV = "IV"
    IM = "IM"
    INTRANASAL = "intranasal"
    ORAL = "oral"
    SUBLINGUAL = "sublingual"


class ReadingSource(StrEnum):
    CUFF = "cuff"
    MANUAL = "manual"


class ReadingFlag(StrEnum):
    """Measurement status bits (GATT Specification Supplement 3.31.2.6) plus our own."""

    BODY_MOVEMENT = "body_movement"
    CUFF_TOO_LOOSE = "cuff_too_loose"
    IRREGULAR_PULSE = "irregular_pulse"
    PULSE_RATE_RANGE = "pulse_rate_range"
    IMPROPER_POSITION = "improper_position"
    # Ours (DESIGN.md "Time"): the cuff's own stamp was more than the tolerance off the
    # receive time; the reading is stored at the receive time and keeps the cuff's stamp.
    CUFF_CLOCK_OFF = "cuff_clock_off"
    # Ours (DESIGN.md "Partial frames"): systolic without diastolic, or the reverse.
    INCOMPLETE = "incomplete"


# DESIGN.md "Thresholds": these flags ask for a new measurement; the reading is kept.
REMEASURE_FLAGS = frozenset(
    {ReadingFlag.BODY_MOVEMENT, ReadingFlag.CUFF_TOO_LOOSE, ReadingFlag.IMPROPER_POSITION}
)


class DoseFlag(StrEnum):
    """What a dose record says about the way it was given (DESIGN.md "Dosing gate")."""

    # Given while the dosing gate stood, with a clinician's override reason.
    HOLD_OVERRIDDEN = "hold_overridden"
    # The first dose, with no valid reading before it in the session.
    NO_BASELINE = "no_baseline"
    # A later dose with no valid reading in the recent-BP time before it.
    NO_RECENT_BP = "no_recent_bp"


class AuditAction(StrEnum):
    """What an audit record says was done (stored verbatim in `audit.action`)."""

    CREATED = "created"
    CUFF_ASSIGNED = "cuff_assigned"
    CUFF_UNASSIGNED = "cuff_unassigned"
    DISABLED = "disabled"
    ENABLED = "enabled"
    STARTED = "started"
    DOSE_RECORDED = "dose_recorded"
    INFUSION_STOPPED = "infusion_stopped"
    SIDE_EFFECT = "side_effect"
    WAIVED = "waived"
    CLOSED = "closed"
    PHASE = "phase"
    MANUAL_READING = "manual_reading"
    # Accounts (issue #17): sign-in, tokens, passwords, roles, lockout.
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGOUT = "logout"
    LOCKED = "locked"
    UNLOCKED = "unlocked"
    PASSWORD_CHANGED = "password_changed"
    PASSWORD_RESET = "password_reset"
    ROLE_CHANGED = "role_changed"
    # Chairs (issue #14): an admin renames one or takes it out of service.
    RENAMED = "renamed"
    RETIRED = "retired"
    # The alert state machine's transitions (`vitalsd.alerts`).
    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    SNOOZED = "snoozed"
    SNOOZE_EXPIRED = "snooze_expired"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    PRIORITY_RAISED = "priority_raised"
    VERIFIED = "verified"
    # Alarm behaviour (DESIGN.md "Safety rules"): latching, worsening, re-notification.
    CONDITION_CLEARED = "condition_cleared"
    CONDITION_RETURNED = "condition_returned"
    WORSENED = "worsened"
    RENOTIFIED = "renotified"
    LATEST_VALUE = "latest_value"


class ConnectionState(StrEnum):
    """A cuff's Bluetooth link as the devices list shows it."""

    UNKNOWN = "unknown"
    ADVERTISING = "advertising"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    UNREACHABLE = "unreachable"


class SideEffect(StrEnum):
    """Side effects named in clinical guidance (DESIGN.md "Clinical protocol")."""

    DISSOCIATION = "dissociation"
    MOOD_ELEVATION = "mood_elevation"
    ANXIETY = "anxiety"
    NAUSEA = "nausea"
    VOMITING = "vomiting"
    DIZZINESS = "dizziness"
    SEDATION = "sedation"
    BLURRED_VISION = "blurred_vision"
    NUMBNESS = "numbness"


class CheckKind(StrEnum):
    BASELINE = "baseline"
    POST_DOSE = "post_dose"
    INFUSION = "infusion"
    POST_INFUSION = "post_infusion"
    CLOSE = "close"


class CheckState(StrEnum):
    PENDING = "pending"
    DUE = "due"
    SATISFIED = "satisfied"
    OVERDUE = "overdue"
    WAIVED = "waived"


class AlertKind(StrEnum):
    ELEVATED_BASELINE = "elevated_baseline"
    CONSIDER_DEFERRING = "consider_deferring"
    DOSING_HOLD = "dosing_hold"
    SEVERE_HYPERTENSION = "severe_hypertension"
    RISE_OVER_BASELINE = "rise_over_baseline"
    HYPOTENSION = "hypotension"
    PULSE_OUT_OF_RANGE = "pulse_out_of_range"
    REMEASURE = "remeasure"
    CHECK_OVERDUE = "check_overdue"
    STALE = "stale"
    # Added in the second round (DESIGN.md "Interfaces": extend, never rename).
    SEVERE_SIDE_EFFECT = "severe_side_effect"
    CUFF_CLOCK_OFF = "cuff_clock_off"
    CUFF_OFFLINE = "cuff_offline"
    NOBODY_WATCHING = "nobody_watching"
    CHANNEL_FAILING = "channel_failing"


class Priority(StrEnum):
    """IEC 60601-1-8 alarm priorities (red / yellow / cyan on screen)."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        return {"low": 0, "medium": 1, "high": 2}[self.value]


class AlertState(StrEnum):
    ACTIVE = "active"
    ACKNOWLEDGED = "acknowledged"
    SNOOZED = "snoozed"
    RESOLVED = "resolved"


def require_utc(value: datetime, name: str) -> datetime:
    """Times are timezone-aware; we keep them in UTC (STYLE.md "Our own habits")."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def age_in_years(date_of_birth: date, on: date) -> int:
    """Completed years of age on a day (for the age-65 systolic rule)."""
    years = on.year - date_of_birth.year
    if (on.month, on.day) < (date_of_birth.month, date_of_birth.day):
        years -= 1
    return years


@dataclass(frozen=True)
class Reading:
    """One blood-pressure measurement as the rules see it (pressures in mmHg, pulse /min).

    `valid` is False for a failed measurement (an error frame): it satisfies no check and
    is no baseline.
    """

    id: int | None
    measured_at: datetime
    systolic: float | None
    diastolic: float | None
    mean_arterial_pressure: float | None = None
    pulse_rate: float | None = None
    source: ReadingSource = ReadingSource.CUFF
    flags: frozenset[ReadingFlag] = frozenset()
    valid: bool = True
    # When it reached us (None: at `measured_at`): requirements apply from then on.
    received_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.valid:
            for name in ("systolic", "diastolic"):
                value = getattr(self, name)
                if value is None or math.isnan(value):
                    raise InvalidInput(f"a valid reading needs a {name} value")
            assert self.systolic is not None and self.diastolic is not None
            if not 0 < self.diastolic <= self.systolic < 400:
                raise InvalidInput(
                    "expected 0 < diastolic <= systolic < 400 mmHg, got "
                    f"{self.systolic:g}/{self.diastolic:g}"
                )

    @property
    def needs_remeasure(self) -> bool:
        return bool(self.flags & REMEASURE_FLAGS)

    @property
    def incomplete(self) -> bool:
        """A partial frame (DESIGN.md "Partial frames"): stored invalid (it satisfies no
        check, it is no baseline) with the one pressure it has, and its pulse."""
        return not self.valid and ReadingFlag.INCOMPLETE in self.flags

    @property
    def known_at(self) -> datetime:
        return self.received_at if self.received_at is not None else self.measured_at


@dataclass(frozen=True)
class CuffReading:
    """A cuff's record as the clinic ingests it: pressures in mmHg, pulse /min, its status
    bits as flags. The Bluetooth side converts its codec's measurement into this once
    (`vitalsd.cuff_readings`), so the clinic never sees the GATT codec. The values are
    as the cuff sent them (NaN or out of range included): the clinic judges validity.

    `error_frame`: the record itself says the measurement failed (all pressures NaN and
    no status bits, as real cuffs report it).

    When it was taken (DESIGN.md "Time"): `live` says it was received as it was taken
    (the cuff measured while connected), not a stored record replayed later; `received_at`
    is when the Bluetooth side received it (None: not known, the stamp is used as it is);
    `clock_checked` says the Bluetooth side read the cuff's clock on this connection and
    corrected a stored record's stamp by the offset it saw. A live reading whose stamp is
    further off `received_at` than the tolerance, or a stored record whose clock was not
    checked, has a time that cannot be trusted."""

    systolic: float
    diastolic: float
    mean_arterial_pressure: float
    pulse_rate: float | None = None
    user_id: int | None = None
    flags: frozenset[ReadingFlag] = frozenset()
    error_frame: bool = False
    live: bool = False
    received_at: datetime | None = None
    clock_checked: bool = True


def mean_arterial_pressure(systolic: float, diastolic: float) -> float:
    """MAP estimated as diastolic + one third of the pulse pressure (for manual readings)."""
    return diastolic + (systolic - diastolic) / 3.0


@dataclass(frozen=True)
class Dose:
    """A dose as the schedule sees it. For infusions `ended_at` is the stop (None: running)."""

    id: int | None
    drug: Drug
    amount_mg: float
    route: Route
    given_at: datetime
    ended_at: datetime | None = None
    increase: bool = False
    flags: frozenset[DoseFlag] = frozenset()

    def __post_init__(self) -> None:
        if not self.amount_mg > 0:
            raise InvalidInput(f"amount_mg must be positive, got {self.amount_mg}")
        if self.ended_at is not None and self.ended_at < self.given_at:
            raise InvalidInput("an infusion cannot stop before it starts")


@dataclass(frozen=True)
class ObservedSideEffect:
    """A side effect logged in a session, as the rules see it (a severe one asks for a
    check, DESIGN.md "Monitor until stable")."""

    id: int | None
    effect: SideEffect
    severity: int
    observed_at: datetime
    recorded_at: datetime | None = None  # when it was entered; None: as observed

    @property
    def known_at(self) -> datetime:
        """When the rules could first know of it: a side effect entered late is not
        overdue for a check before anyone could have taken it."""
        return (
            self.observed_at
            if self.recorded_at is None
            else max(self.observed_at, self.recorded_at)
        )


@dataclass(frozen=True)
class SessionFacts:
    """Everything the pure rules need to know about one session at a moment.

    `course_session` is 1 for the patient's first session, 2 for the second, ... ("start
    of a course" = the first N, DESIGN.md "Clinical protocol").
    """

    started_at: datetime
    course_session: int = 1
    doses: tuple[Dose, ...] = ()
    readings: tuple[Reading, ...] = ()
    waivers: tuple[tuple[str, str], ...] = ()
    closed_at: datetime | None = None
    date_of_birth: date | None = None
    side_effects: tuple[ObservedSideEffect, ...] = ()
    # The clinic's time zone (setting `timezone`): ages and day boundaries are local
    # (DESIGN.md "Time"; the low finding of issue #13).
    zone: tzinfo = UTC

    @property
    def first_dose_at(self) -> datetime | None:
        return min((d.given_at for d in self.doses), default=None)

    def waiver_for(self, key: str) -> str | None:
        for waived_key, reason in self.waivers:
            if waived_key == key:
                return reason
        return None


MINUTE = timedelta(minutes=1)

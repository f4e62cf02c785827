"""The patient behind a simulated cuff: pure, seeded, clock-injected.

Everything here takes `now` (tz-aware UTC) and a `random.Random`; nothing reads a clock
or sleeps, so the dose response can be checked over thousands of patients in
milliseconds. Numbers are cited where they come from (issue #3, "A patient behind the
cuff", and the clinical thresholds in DESIGN.md).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from devices.bps import MeasurementStatus


class Profile(StrEnum):
    """A patient's resting blood pressure, as the clinic's thresholds see it."""

    NORMOTENSIVE = "normotensive"
    # At or above the 140/90 advisory threshold, below the 160/100 dosing hold (DESIGN.md,
    # "Thresholds"), so a baseline raises `elevated_baseline` and nothing stronger.
    ELEVATED = "elevated"
    # At or above the 160/100 dosing hold, below the 180/110 severe threshold.
    HYPERTENSIVE = "hypertensive"
    # Below 90 systolic / 60 diastolic: the `hypotension` alert.
    HYPOTENSIVE = "hypotensive"


@dataclass(frozen=True)
class BaselineRange:
    """Where a profile's resting values are drawn from (uniformly), mmHg and /min."""

    systolic: tuple[float, float]
    diastolic: tuple[float, float]
    pulse: tuple[float, float]


# Ranges keep a margin of about two reading-to-reading standard deviations from the
# DESIGN.md thresholds, so a profile's baseline readings fall on the intended side.
BASELINES: Final[dict[Profile, BaselineRange]] = {
    Profile.NORMOTENSIVE: BaselineRange((105.0, 125.0), (65.0, 80.0), (60.0, 80.0)),
    Profile.ELEVATED: BaselineRange((146.0, 153.0), (93.0, 96.0), (65.0, 85.0)),
    Profile.HYPERTENSIVE: BaselineRange((166.0, 172.0), (104.0, 106.0), (70.0, 90.0)),
    Profile.HYPOTENSIVE: BaselineRange((78.0, 84.0), (48.0, 54.0), (65.0, 85.0)),
}

# Reading-to-reading variation ("a few mmHg", issue #3): standard deviations.
SYSTOLIC_VARIATION_MMHG: Final = 3.0
DIASTOLIC_VARIATION_MMHG: Final = 2.0
PULSE_VARIATION_PER_MIN: Final = 2.0

# Dose response (issue #3, after the esketamine prescribing information: mean peak rise
# about +8 to +16 systolic / +5 to +11 diastolic about 30-40 minutes after dosing, back
# to baseline in about 90-120 minutes; roughly 8-17% of patients rose by more than
# 40 mmHg systolic).
HIGH_RESPONDER_SHARE: Final = 0.10
TYPICAL_SYSTOLIC_RISE: Final = (10.0, 2.5, 5.0, 18.0)  # mean, sd, low clamp, high clamp
TYPICAL_DIASTOLIC_RISE: Final = (7.0, 2.0, 3.0, 12.0)
HIGH_SYSTOLIC_RISE: Final = (40.0, 55.0)  # uniform
HIGH_DIASTOLIC_RISE: Final = (20.0, 30.0)
PULSE_RISE: Final = (8.0, 3.0, 0.0, 20.0)
PEAK_AFTER_MINUTES: Final = (30.0, 40.0)
RESOLVED_AFTER_MINUTES: Final = (90.0, 120.0)

# What the measurement problems do to a reading: a loose cuff and an arm below heart
# level both read high; body movement scatters the oscillometric envelope.
LOOSE_CUFF_BIAS_MMHG: Final = (8.0, 5.0)
IMPROPER_POSITION_BIAS_MMHG: Final = (6.0, 5.0)
MOVEMENT_EXTRA_VARIATION_MMHG: Final = 8.0
IRREGULAR_PULSE_EXTRA_VARIATION: Final = 8.0

# A cuff measures within this range; values outside it are clamped (typical cuff specs).
CUFF_RANGE_MMHG: Final = (20.0, 280.0)
PULSE_RANGE_PER_MIN: Final = (30.0, 199.0)


class MeasurementProblem(StrEnum):
    """What can go wrong in one measurement (issue #3, "Measurement problems on demand")."""

    BODY_MOVEMENT = "body-movement"
    LOOSE_CUFF = "loose-cuff"
    IMPROPER_POSITION = "improper-position"
    IRREGULAR_PULSE = "irregular-pulse"
    # The cuff gives up: all-NaN values and no status bits, as real cuffs send.
    ERROR_FRAME = "error-frame"

    @property
    def status(self) -> MeasurementStatus:
        """The Measurement Status bit a cuff sets for it (GSS 3.31.2.6); none for errors."""
        return _PROBLEM_STATUS[self]


_PROBLEM_STATUS: Final = {
    MeasurementProblem.BODY_MOVEMENT: MeasurementStatus.BODY_MOVEMENT_DETECTED,
    MeasurementProblem.LOOSE_CUFF: MeasurementStatus.CUFF_TOO_LOOSE,
    MeasurementProblem.IMPROPER_POSITION: MeasurementStatus.IMPROPER_MEASUREMENT_POSITION,
    MeasurementProblem.IRREGULAR_PULSE: MeasurementStatus.IRREGULAR_PULSE_DETECTED,
    MeasurementProblem.ERROR_FRAME: MeasurementStatus(0),
}


def _clamped_normal(rng: random.Random, spec: tuple[float, float, float, float]) -> float:
    mean, sd, low, high = spec
    return min(high, max(low, rng.gauss(mean, sd)))


@dataclass(frozen=True)
class DoseResponse:
    """How one patient's pressures answer a dose: a smooth rise to the peak, then back.

    `fraction(since_dose)` is 0 before the dose, rises as sin^2 to exactly 1 at
    `peak_after`, falls as cos^2 to exactly 0 at `resolved_after` and stays there.
    """

    systolic_rise: float
    diastolic_rise: float
    pulse_rise: float
    peak_after: timedelta
    resolved_after: timedelta

    def __post_init__(self) -> None:
        if not timedelta(0) < self.peak_after < self.resolved_after:
            raise ValueError(
                f"a dose response needs 0 < peak_after < resolved_after, got "
                f"{self.peak_after} and {self.resolved_after}"
            )

    @classmethod
    def draw(cls, rng: random.Random, *, high_responder: bool | None = None) -> DoseResponse:
        """A patient's response; `high_responder` None lets chance decide (10%)."""
        if high_responder is None:
            high_responder = rng.random() < HIGH_RESPONDER_SHARE
        if high_responder:
            systolic = rng.uniform(*HIGH_SYSTOLIC_RISE)
            diastolic = rng.uniform(*HIGH_DIASTOLIC_RISE)
        else:
            systolic = _clamped_normal(rng, TYPICAL_SYSTOLIC_RISE)
            diastolic = _clamped_normal(rng, TYPICAL_DIASTOLIC_RISE)
        return cls(
            systolic_rise=systolic,
            diastolic_rise=diastolic,
            pulse_rise=_clamped_normal(rng, PULSE_RISE),
            peak_after=timedelta(minutes=rng.uniform(*PEAK_AFTER_MINUTES)),
            resolved_after=timedelta(minutes=rng.uniform(*RESOLVED_AFTER_MINUTES)),
        )

    def fraction(self, since_dose: timedelta) -> float:
        """Share of the peak rise present `since_dose` after dosing, 0..1."""
        if since_dose <= timedelta(0) or since_dose >= self.resolved_after:
            return 0.0
        if since_dose <= self.peak_after:
            return math.sin(math.pi / 2 * (since_dose / self.peak_after)) ** 2
        falling = (since_dose - self.peak_after) / (self.resolved_after - self.peak_after)
        return math.cos(math.pi / 2 * falling) ** 2


@dataclass(frozen=True)
class VitalSigns:
    """Noise-free pressures and pulse at one instant (mmHg, /min)."""

    systolic: float
    diastolic: float
    pulse_rate: float


@dataclass(frozen=True)
class Reading:
    """What one cuff measurement reports (mmHg, /min); NaN everywhere for an error frame.

    `status` holds the Measurement Status bits the cuff sends; `problem` what caused them.
    """

    systolic: float
    diastolic: float
    mean_arterial_pressure: float
    pulse_rate: float
    status: MeasurementStatus
    problem: MeasurementProblem | None = None

    @property
    def is_error(self) -> bool:
        return math.isnan(self.systolic)


def mean_arterial_pressure(systolic: float, diastolic: float) -> float:
    """MAP ~ diastolic + (systolic - diastolic) / 3, as cuffs estimate it, whole mmHg."""
    return float(round(diastolic + (systolic - diastolic) / 3))


def _check_aware(name: str, value: datetime) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")


@dataclass(frozen=True)
class Patient:
    """One patient: resting values by profile and their own response to a dose."""

    profile: Profile
    baseline_systolic: float
    baseline_diastolic: float
    baseline_pulse: float
    response: DoseResponse

    @classmethod
    def draw(
        cls, profile: Profile | str, rng: random.Random, *, high_responder: bool | None = None
    ) -> Patient:
        """A patient of `profile`, drawn from `rng` (seed it for a reproducible patient)."""
        try:
            profile = Profile(profile)
        except ValueError:
            known = ", ".join(p.value for p in Profile)
            raise ValueError(f"unknown patient profile {profile!r}; known: {known}") from None
        ranges = BASELINES[profile]
        return cls(
            profile=profile,
            baseline_systolic=rng.uniform(*ranges.systolic),
            baseline_diastolic=rng.uniform(*ranges.diastolic),
            baseline_pulse=rng.uniform(*ranges.pulse),
            response=DoseResponse.draw(rng, high_responder=high_responder),
        )

    def expected(self, now: datetime, doses: Iterable[datetime] = ()) -> VitalSigns:
        """Noise-free values at `now`; the responses to several doses add up."""
        _check_aware("now", now)
        share = 0.0
        for dose in doses:
            _check_aware("dose time", dose)
            share += self.response.fraction(now - dose)
        return VitalSigns(
            systolic=self.baseline_systolic + share * self.response.systolic_rise,
            diastolic=self.baseline_diastolic + share * self.response.diastolic_rise,
            pulse_rate=self.baseline_pulse + share * self.response.pulse_rise,
        )

    def measure(
        self,
        now: datetime,
        rng: random.Random,
        *,
        doses: Iterable[datetime] = (),
        problem: MeasurementProblem | str | None = None,
    ) -> Reading:
        """One cuff reading at `now`: expected values plus variation, shaped by `problem`."""
        if problem is not None:
            problem = _parse_problem(problem)
        if problem is MeasurementProblem.ERROR_FRAME:
            return Reading(math.nan, math.nan, math.nan, math.nan, MeasurementStatus(0), problem)
        vitals = self.expected(now, doses)
        systolic = vitals.systolic + rng.gauss(0.0, SYSTOLIC_VARIATION_MMHG)
        diastolic = vitals.diastolic + rng.gauss(0.0, DIASTOLIC_VARIATION_MMHG)
        pulse = vitals.pulse_rate + rng.gauss(0.0, PULSE_VARIATION_PER_MIN)
        match problem:
            case MeasurementProblem.BODY_MOVEMENT:
                systolic += rng.gauss(0.0, MOVEMENT_EXTRA_VARIATION_MMHG)
                diastolic += rng.gauss(0.0, MOVEMENT_EXTRA_VARIATION_MMHG / 2)
                pulse += abs(rng.gauss(0.0, MOVEMENT_EXTRA_VARIATION_MMHG))
            case MeasurementProblem.LOOSE_CUFF:
                systolic += LOOSE_CUFF_BIAS_MMHG[0]
                diastolic += LOOSE_CUFF_BIAS_MMHG[1]
            case MeasurementProblem.IMPROPER_POSITION:
                systolic += IMPROPER_POSITION_BIAS_MMHG[0]
                diastolic += IMPROPER_POSITION_BIAS_MMHG[1]
            case MeasurementProblem.IRREGULAR_PULSE:
                pulse += rng.gauss(0.0, IRREGULAR_PULSE_EXTRA_VARIATION)
        low, high = CUFF_RANGE_MMHG
        systolic = float(round(min(high, max(low + 10, systolic))))
        # A diastolic at or above the systolic is not a reading a cuff reports.
        diastolic = float(round(min(systolic - 10, max(low, diastolic))))
        pulse = float(round(min(PULSE_RANGE_PER_MIN[1], max(PULSE_RANGE_PER_MIN[0], pulse))))
        status = problem.status if problem is not None else MeasurementStatus(0)
        return Reading(
            systolic,
            diastolic,
            mean_arterial_pressure(systolic, diastolic),
            pulse,
            status,
            problem,
        )


def _parse_problem(problem: MeasurementProblem | str) -> MeasurementProblem:
    try:
        return MeasurementProblem(problem)
    except ValueError:
        known = ", ".join(p.value for p in MeasurementProblem)
        raise ValueError(f"unknown measurement problem {problem!r}; known: {known}") from None


# --- The measurement itself: inflation and deflation ---------------------------------
# Oscillometric cuffs inflate to about 30 mmHg above the expected systolic at roughly
# 15 mmHg/s, then deflate at about 3-5 mmHg/s past the diastolic and release; the whole
# measurement takes about half a minute. Intermediate Cuff Pressure is sent about once
# a second (DESIGN.md, `cuff_pressure` events).
INFLATION_MMHG_PER_S: Final = 15.0
DEFLATION_MMHG_PER_S: Final = 4.0
OVERSHOOT_MMHG: Final = 30.0
MINIMUM_INFLATION_MMHG: Final = 140.0
# A failed measurement inflates to this and gives up at about this pressure.
FAILED_INFLATION_MMHG: Final = 180.0
CUFF_PRESSURE_INTERVAL: Final = timedelta(seconds=1)


@dataclass(frozen=True)
class CuffPressureSample:
    """One Intermediate Cuff Pressure value, `after` the measurement started (mmHg)."""

    after: timedelta
    pressure: float


def cuff_pressure_trace(
    reading: Reading, *, interval: timedelta = CUFF_PRESSURE_INTERVAL
) -> list[CuffPressureSample]:
    """The cuff pressures a measurement of `reading` goes through, one per `interval`.

    The last sample's `after` is when the measurement completes (the result is sent
    then). A failed measurement inflates, deflates a little and gives up.
    """
    if interval <= timedelta(0):
        raise ValueError(f"interval must be positive, got {interval}")
    if reading.is_error:
        top = FAILED_INFLATION_MMHG
        bottom = FAILED_INFLATION_MMHG - 40.0
    else:
        top = max(MINIMUM_INFLATION_MMHG, reading.systolic + OVERSHOOT_MMHG)
        bottom = max(CUFF_RANGE_MMHG[0], reading.diastolic - 10.0)
    step = interval.total_seconds()
    samples: list[CuffPressureSample] = []
    seconds = 0.0
    pressure = 0.0
    while pressure < top:
        seconds += step
        pressure = min(top, pressure + INFLATION_MMHG_PER_S * step)
        samples.append(CuffPressureSample(timedelta(seconds=seconds), float(round(pressure))))
    while pressure > bottom:
        seconds += step
        pressure = max(bottom, pressure - DEFLATION_MMHG_PER_S * step)
        samples.append(CuffPressureSample(timedelta(seconds=seconds), float(round(pressure))))
    return samples

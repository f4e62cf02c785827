"""Blood-pressure thresholds: what a reading means and which alerts it calls for.

Pure: the caller passes the reading, the session's baseline and the patient's age.
Numbers come from the protocol file (DESIGN.md "Thresholds"); the display category is
the ACC/AHA 2017 classification.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from vitalsd.domain import AlertKind, Priority, Reading, ReadingFlag
from vitalsd.protocol import ThresholdLimits


class BloodPressureCategory(StrEnum):
    """ACC/AHA 2017 blood-pressure categories, for display, plus `low` (hypotension) below
    them: a reading under 90/60 is never shown as `normal`."""

    LOW = "low"
    NORMAL = "normal"
    ELEVATED = "elevated"
    STAGE_1 = "stage_1"
    STAGE_2 = "stage_2"
    SEVERE = "severe"


def whole_mmhg(value: float) -> int:
    """The whole-mmHg value the screen shows: rounded half up (DESIGN.md "What was judged
    is what is shown"): 159.76 mmHg (21.3 kPa) is 160, and is judged as 160."""
    return math.floor(value + 0.5)


def blood_pressure_category(
    systolic: float, diastolic: float, limits: ThresholdLimits | None = None
) -> BloodPressureCategory:
    """The higher of the systolic and diastolic categories (2017 ACC/AHA guideline, table 6),
    judged on the whole-mmHg values shown. The ends follow the protocol's own limits, so the
    category never contradicts an alert: `severe` from the severe-hypertension limits,
    `low` below the hypotension limits."""
    limits = limits or ThresholdLimits()
    systolic, diastolic = whole_mmhg(systolic), whole_mmhg(diastolic)
    if systolic >= limits.severe_systolic or diastolic >= limits.severe_diastolic:
        return BloodPressureCategory.SEVERE
    if systolic > 180 or diastolic > 120:
        return BloodPressureCategory.SEVERE
    if systolic < limits.hypotension_systolic or diastolic < limits.hypotension_diastolic:
        return BloodPressureCategory.LOW
    if systolic >= 140 or diastolic >= 90:
        return BloodPressureCategory.STAGE_2
    if systolic >= 130 or diastolic >= 80:
        return BloodPressureCategory.STAGE_1
    if systolic >= 120:
        return BloodPressureCategory.ELEVATED
    return BloodPressureCategory.NORMAL


@dataclass(frozen=True)
class Baseline:
    """The session's pre-dose blood pressure: the mean of the readings it was made from."""

    systolic: float
    diastolic: float
    reading_ids: tuple[int | None, ...]

    @property
    def confirmed(self) -> bool:
        return len(self.reading_ids) > 1


def baseline_of(
    readings: Iterable[Reading], first_dose_at: datetime | None, readings_averaged: int = 2
) -> Baseline | None:
    """Baseline = the valid pre-dose readings of this session, averaged over the latest
    `readings_averaged` (the mean when a confirming reading was taken). Readings flagged
    for a remeasurement count only when there is nothing better."""
    before_dose = sorted(
        (
            r
            for r in readings
            if r.valid and (first_dose_at is None or r.measured_at <= first_dose_at)
        ),
        key=lambda r: r.measured_at,
    )
    clean = [r for r in before_dose if not r.needs_remeasure]
    chosen = (clean or before_dose)[-readings_averaged:]
    if not chosen:
        return None
    systolic = sum(r.systolic or 0.0 for r in chosen) / len(chosen)
    diastolic = sum(r.diastolic or 0.0 for r in chosen) / len(chosen)
    return Baseline(systolic, diastolic, tuple(r.id for r in chosen))


def _at_least(systolic: float, diastolic: float) -> str:
    """A limit reached at either value (systolic or diastolic), as the screen says it."""
    return f"≥ {systolic:g}/{diastolic:g} mmHg"


def _pulse_range(low: float, high: float) -> str:
    return f"{low:g}-{high:g} /min"


@dataclass(frozen=True)
class Finding:
    """A condition a reading or baseline shows: the alert the shell raises or keeps."""

    kind: AlertKind
    priority: Priority
    message: str
    unverified: bool = False
    # What makes two findings "one persisting condition": the kind, or for a check the
    # kind and the check (`check_overdue:post_dose:d7`).
    subject: str | None = None
    # The values judged (whole mmHg), so an alert can tell when its condition worsens;
    # `lower_is_worse` for hypotension.
    systolic: float | None = None
    diastolic: float | None = None
    lower_is_worse: bool = False
    # The limit crossed, in words a screen or a phone shows ("≥ 180/110 mmHg").
    limit: str | None = None

    @property
    def condition(self) -> str:
        return self.kind.value if self.subject is None else f"{self.kind.value}:{self.subject}"


@dataclass(frozen=True)
class Assessment:
    """What one reading shows: its category, the conditions it raises, those it clears."""

    category: BloodPressureCategory | None
    findings: tuple[Finding, ...]
    clears: frozenset[AlertKind]


# Conditions one reading can show; a later clean reading without them clears them.
READING_KINDS = frozenset(
    {
        AlertKind.SEVERE_HYPERTENSION,
        AlertKind.RISE_OVER_BASELINE,
        AlertKind.HYPOTENSION,
        AlertKind.PULSE_OUT_OF_RANGE,
        AlertKind.REMEASURE,
    }
)
BASELINE_KINDS = frozenset(
    {AlertKind.ELEVATED_BASELINE, AlertKind.DOSING_HOLD, AlertKind.CONSIDER_DEFERRING}
)


def _bp(systolic: float, diastolic: float) -> str:
    return f"{whole_mmhg(systolic)}/{whole_mmhg(diastolic)} mmHg"


@dataclass(frozen=True)
class Thresholds:
    limits: ThresholdLimits = field(default_factory=ThresholdLimits)

    def elevated_systolic_for(self, age_years: int | None) -> float:
        """Systolic >= 150 counts as elevated only from age 65 (DESIGN.md "Thresholds")."""
        if age_years is not None and age_years >= self.limits.older_patient_age:
            return self.limits.elevated_systolic_older
        return self.limits.elevated_systolic

    def is_elevated_baseline(self, baseline: Baseline, age_years: int | None) -> bool:
        return (
            whole_mmhg(baseline.systolic) >= self.elevated_systolic_for(age_years)
            or whole_mmhg(baseline.diastolic) >= self.limits.elevated_diastolic
        )

    def is_dosing_hold(self, baseline: Baseline) -> bool:
        return self.in_hold_range(baseline.systolic, baseline.diastolic)

    def in_hold_range(self, systolic: float, diastolic: float) -> bool:
        """At or above the dosing-hold limits, on the values shown."""
        return (
            whole_mmhg(systolic) >= self.limits.hold_systolic
            or whole_mmhg(diastolic) >= self.limits.hold_diastolic
        )

    def is_severe(self, systolic: float, diastolic: float) -> bool:
        return (
            whole_mmhg(systolic) >= self.limits.severe_systolic
            or whole_mmhg(diastolic) >= self.limits.severe_diastolic
        )

    def is_rise(self, reading: Reading, baseline: Baseline) -> bool:
        """A rise over the baseline, on the values shown."""
        if reading.systolic is None or reading.diastolic is None:
            return False
        return (
            whole_mmhg(reading.systolic) - whole_mmhg(baseline.systolic)
            >= self.limits.rise_systolic
            or whole_mmhg(reading.diastolic) - whole_mmhg(baseline.diastolic)
            >= self.limits.rise_diastolic
        )

    def category(self, systolic: float, diastolic: float) -> BloodPressureCategory:
        return blood_pressure_category(systolic, diastolic, self.limits)

    def baseline_findings(
        self, baseline: Baseline | None, age_years: int | None, consider_deferring: bool
    ) -> tuple[Finding, ...]:
        """The conditions the current baseline shows. A hold-range baseline raises
        `dosing_hold` in place of `elevated_baseline` (one alert for one condition)."""
        if baseline is None:
            return ()
        shown = _bp(baseline.systolic, baseline.diastolic)
        confirm = "" if baseline.confirmed else "; take a confirming reading"
        findings: list[Finding] = []
        if self.is_dosing_hold(baseline):
            findings.append(
                Finding(
                    AlertKind.DOSING_HOLD,
                    Priority.HIGH,
                    f"Dosing hold: baseline {shown} "
                    f"(>= {self.limits.hold_systolic:g}/{self.limits.hold_diastolic:g}); "
                    f"a dose needs a clinician's reason while it stands{confirm}",
                    # The values judged: a hold worsens (sounds again) from them.
                    systolic=whole_mmhg(baseline.systolic),
                    diastolic=whole_mmhg(baseline.diastolic),
                    limit=_at_least(self.limits.hold_systolic, self.limits.hold_diastolic),
                )
            )
        elif self.is_elevated_baseline(baseline, age_years):
            limit = self.elevated_systolic_for(age_years)
            findings.append(
                Finding(
                    AlertKind.ELEVATED_BASELINE,
                    Priority.LOW,
                    f"Elevated baseline {shown} (>= {limit:g}/"
                    f"{self.limits.elevated_diastolic:g}): a post-dose check is required{confirm}",
                    limit=_at_least(limit, self.limits.elevated_diastolic),
                )
            )
        if findings and consider_deferring:
            findings.append(
                Finding(
                    AlertKind.CONSIDER_DEFERRING,
                    Priority.LOW,
                    f"Baseline {shown} is elevated: consider deferring esketamine dosing",
                )
            )
        return tuple(findings)

    def assess(self, reading: Reading, baseline: Baseline | None, post_dose: bool) -> Assessment:
        """Classify one reading. A reading flagged for movement, a loose cuff or improper
        position asks for a remeasurement and raises nothing else except a severe value
        (marked unverified); it clears nothing. An error frame shows nothing; a partial
        frame, `assess_incomplete`."""
        if reading.incomplete:
            return self.assess_incomplete(reading)
        if not reading.valid or reading.systolic is None or reading.diastolic is None:
            return Assessment(None, (), frozenset())
        # Judged on the whole-mmHg values the screen shows.
        systolic, diastolic = whole_mmhg(reading.systolic), whole_mmhg(reading.diastolic)
        limits = self.limits
        category = self.category(systolic, diastolic)
        shown = _bp(systolic, diastolic)
        findings: list[Finding] = []
        flagged = reading.needs_remeasure
        severe = self.is_severe(systolic, diastolic)
        if flagged:
            flags = ", ".join(sorted(f.value.replace("_", " ") for f in reading.flags))
            findings.append(
                Finding(AlertKind.REMEASURE, Priority.LOW, f"Remeasure: cuff reported {flags}")
            )
        if severe:
            findings.append(
                Finding(
                    AlertKind.SEVERE_HYPERTENSION,
                    Priority.HIGH,
                    f"Severe hypertension {shown} "
                    f"(>= {limits.severe_systolic:g}/{limits.severe_diastolic:g})"
                    + (" - unverified: the cuff flagged this measurement" if flagged else ""),
                    unverified=flagged,
                    systolic=systolic,
                    diastolic=diastolic,
                    limit=_at_least(limits.severe_systolic, limits.severe_diastolic),
                )
            )
        if flagged:
            return Assessment(category, tuple(findings), frozenset())
        evaluated = {AlertKind.SEVERE_HYPERTENSION, AlertKind.REMEASURE, AlertKind.HYPOTENSION}
        if post_dose and baseline is not None and not severe:
            evaluated.add(AlertKind.RISE_OVER_BASELINE)
            rise_s = systolic - whole_mmhg(baseline.systolic)
            rise_d = diastolic - whole_mmhg(baseline.diastolic)
            if rise_s >= limits.rise_systolic or rise_d >= limits.rise_diastolic:
                findings.append(
                    Finding(
                        AlertKind.RISE_OVER_BASELINE,
                        Priority.MEDIUM,
                        f"Rise over baseline: {shown}, {rise_s:+.0f}/{rise_d:+.0f} mmHg from "
                        f"{_bp(baseline.systolic, baseline.diastolic)}",
                        systolic=systolic,
                        diastolic=diastolic,
                        limit=f"a rise of {limits.rise_systolic:g}/{limits.rise_diastolic:g} "
                        f"mmHg over the baseline {_bp(baseline.systolic, baseline.diastolic)}",
                    )
                )
        if systolic < limits.hypotension_systolic or diastolic < limits.hypotension_diastolic:
            findings.append(
                Finding(
                    AlertKind.HYPOTENSION,
                    Priority.MEDIUM,
                    f"Hypotension {shown} (< {limits.hypotension_systolic:g}/"
                    f"{limits.hypotension_diastolic:g})",
                    systolic=systolic,
                    diastolic=diastolic,
                    lower_is_worse=True,
                    limit=f"< {limits.hypotension_systolic:g}/"
                    f"{limits.hypotension_diastolic:g} mmHg",
                )
            )
        if reading.pulse_rate is not None:
            evaluated.add(AlertKind.PULSE_OUT_OF_RANGE)
            if not limits.pulse_low <= whole_mmhg(reading.pulse_rate) <= limits.pulse_high:
                irregular = (
                    " (irregular pulse)" if ReadingFlag.IRREGULAR_PULSE in reading.flags else ""
                )
                findings.append(
                    Finding(
                        AlertKind.PULSE_OUT_OF_RANGE,
                        Priority.MEDIUM,
                        f"Pulse {reading.pulse_rate:.0f}/min outside "
                        f"{limits.pulse_low:g}-{limits.pulse_high:g}{irregular}",
                        limit=_pulse_range(limits.pulse_low, limits.pulse_high),
                    )
                )
        found = {f.kind for f in findings}
        return Assessment(category, tuple(findings), frozenset(evaluated - found))

    def assess_incomplete(self, reading: Reading) -> Assessment:
        """DESIGN.md "Partial frames" (finding 13): systolic without diastolic or the
        reverse asks for a remeasurement; a value in the severe range still alerts,
        marked unverified, and so does a pulse out of range. No category; it clears
        nothing (half a measurement cannot show a condition is gone)."""
        limits = self.limits
        systolic = None if reading.systolic is None else whole_mmhg(reading.systolic)
        diastolic = None if reading.diastolic is None else whole_mmhg(reading.diastolic)
        missing = "diastolic" if diastolic is None else "systolic"
        shown = f"{'?' if systolic is None else f'{systolic:g}'}/" + (
            "?" if diastolic is None else f"{diastolic:g}"
        )
        findings = [
            Finding(
                AlertKind.REMEASURE,
                Priority.LOW,
                f"Remeasure: the cuff sent {shown} mmHg with no {missing}",
            )
        ]
        if (systolic is not None and systolic >= limits.severe_systolic) or (
            diastolic is not None and diastolic >= limits.severe_diastolic
        ):
            findings.append(
                Finding(
                    AlertKind.SEVERE_HYPERTENSION,
                    Priority.HIGH,
                    f"Severe hypertension {shown} (>= {limits.severe_systolic:g}/"
                    f"{limits.severe_diastolic:g}) - unverified: incomplete measurement "
                    f"(no {missing}); remeasure",
                    unverified=True,
                    systolic=systolic,
                    diastolic=diastolic,
                    limit=_at_least(limits.severe_systolic, limits.severe_diastolic),
                )
            )
        if reading.pulse_rate is not None and not (
            limits.pulse_low <= whole_mmhg(reading.pulse_rate) <= limits.pulse_high
        ):
            findings.append(
                Finding(
                    AlertKind.PULSE_OUT_OF_RANGE,
                    Priority.MEDIUM,
                    f"Pulse {reading.pulse_rate:.0f}/min outside "
                    f"{limits.pulse_low:g}-{limits.pulse_high:g} (incomplete measurement)",
                    limit=_pulse_range(limits.pulse_low, limits.pulse_high),
                )
            )
        return Assessment(None, tuple(findings), frozenset())

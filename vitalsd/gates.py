"""The two gates a clinician passes: before a dose and before closing a session.

Pure and clock-injected (DESIGN.md "Safety rules that hold in every preset": "Dosing
gate" and "Closing"). Each gate says what stands in the way, in words for the 409, and
what the record must carry; the shell refuses, or stores with the override reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from vitalsd.alerts import Alert
from vitalsd.domain import (
    AlertKind,
    CheckKind,
    CheckState,
    DoseFlag,
    Priority,
    Reading,
    SessionFacts,
)
from vitalsd.schedule import CheckSchedule
from vitalsd.thresholds import baseline_of, whole_mmhg

# Alerts of the session that stop a dose until they are resolved (acknowledging one says
# it was seen; it does not lift it).
DOSE_BLOCKING_KINDS = frozenset({AlertKind.SEVERE_HYPERTENSION, AlertKind.DOSING_HOLD})


def _bp(systolic: float | None, diastolic: float | None) -> str:
    return f"{whole_mmhg(systolic or 0)}/{whole_mmhg(diastolic or 0)} mmHg"


@dataclass(frozen=True)
class GateDecision:
    """`blocked_by` lists what stands (empty: the way is clear); `flags` go on the record.
    `close_check_missing`: a close overridden with a reason waives the close check."""

    blocked_by: tuple[str, ...]
    flags: frozenset[DoseFlag] = frozenset()
    close_check_missing: bool = False

    @property
    def blocked(self) -> bool:
        return bool(self.blocked_by)

    def refusal(self, what: str) -> str:
        return f"{what} refused without a clinician's reason: " + "; ".join(self.blocked_by)


def _valid_readings_before(facts: SessionFacts, at: datetime) -> list[Reading]:
    return sorted(
        (r for r in facts.readings if r.valid and facts.started_at <= r.measured_at <= at),
        key=lambda r: r.measured_at,
    )


def _blocking_alerts(open_alerts: Iterable[Alert]) -> list[Alert]:
    return [a for a in open_alerts if a.is_open and a.kind in DOSE_BLOCKING_KINDS]


def gate_dose(
    facts: SessionFacts,
    schedule: CheckSchedule,
    open_alerts: Iterable[Alert],
    given_at: datetime,
    *,
    overridden: bool,
) -> GateDecision:
    """Every dose, first or later, is gated: the baseline or the latest valid reading before
    it at or above the hold range, or an unresolved severe or hold alert, stops it unless a
    clinician overrides it (`overridden`). The flags say what the record lacked."""
    thresholds = schedule.thresholds
    before = _valid_readings_before(facts, given_at)
    earlier_doses = [d for d in facts.doses if d.given_at <= given_at]
    first_dose_at = min((d.given_at for d in earlier_doses), default=given_at)
    blocked: list[str] = []
    baseline = baseline_of(before, first_dose_at, schedule.protocol.baseline.readings_averaged)
    if baseline is not None and thresholds.is_dosing_hold(baseline):
        blocked.append(
            f"the baseline {_bp(baseline.systolic, baseline.diastolic)} is in the hold range"
        )
    if before:
        latest = before[-1]
        if thresholds.in_hold_range(latest.systolic or 0, latest.diastolic or 0):
            blocked.append(
                f"the latest reading {_bp(latest.systolic, latest.diastolic)} is in the hold range"
            )
    for alert in _blocking_alerts(open_alerts):
        blocked.append(f"the {alert.kind.value.replace('_', ' ')} alert is not resolved")
    flags: set[DoseFlag] = set()
    if not earlier_doses and not before:
        flags.add(DoseFlag.NO_BASELINE)
    elif not any(given_at - r.measured_at <= schedule.protocol.safety.recent_bp for r in before):
        flags.add(DoseFlag.NO_RECENT_BP)
    if blocked and overridden:
        flags.add(DoseFlag.HOLD_OVERRIDDEN)
    return GateDecision(tuple(blocked), frozenset(flags))


def gate_close(
    facts: SessionFacts,
    schedule: CheckSchedule,
    open_alerts: Iterable[Alert],
    closing_at: datetime,
) -> GateDecision:
    """Closing needs the close check (a valid reading in the last minutes before the
    close), no unresolved high or medium alert, and a latest reading that is stable (not
    in the hold range, not a rise, not severe); otherwise a clinician's reason."""
    blocked: list[str] = []
    closed = schedule.checks(facts, closing_at)
    close = next((c for c in closed if c.kind is CheckKind.CLOSE), None)
    missing = close is not None and close.state not in (CheckState.SATISFIED, CheckState.WAIVED)
    if missing:
        minutes = schedule.protocol.safety.close_reading_within.total_seconds() / 60
        blocked.append(f"no close-of-session reading in the {minutes:g} minutes before closing")
    for alert in open_alerts:
        if alert.is_open and alert.priority in (Priority.HIGH, Priority.MEDIUM):
            blocked.append(
                f"the {alert.priority.value} {alert.kind.value.replace('_', ' ')} alert is "
                "not resolved"
            )
    before = _valid_readings_before(facts, closing_at)
    if before and not schedule.is_stable(facts, before[-1]):
        latest = before[-1]
        blocked.append(f"the latest reading {_bp(latest.systolic, latest.diastolic)} is not stable")
    return GateDecision(tuple(blocked), close_check_missing=missing)

"""Every clinical decision about one session at a moment, as data: what its checks are
now, which alerts rise, change or clear, which phase it is in, how a dose is flagged,
what a close needs and ends. Pure: it takes the facts and `now` and returns decisions;
the clinic's shell (`vitalsd.clinic`) only persists and announces what it returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from vitalsd.alerts import SYSTEM, AlarmPolicy, Alert, AlertChange, reconcile
from vitalsd.domain import (
    AlertKind,
    AlertState,
    CheckState,
    DoseFlag,
    ObservedSideEffect,
    Phase,
    Priority,
    Reading,
    SessionFacts,
)
from vitalsd.gates import DOSE_BLOCKING_KINDS, GateDecision
from vitalsd.protocol import Protocol, SafetyRule
from vitalsd.schedule import Check, CheckSchedule
from vitalsd.thresholds import BASELINE_KINDS, Finding

DEFAULT_STALE_AFTER = timedelta(minutes=30)
NO_LONGER_REQUIRED = "no longer required by the protocol"
SESSION_CLOSED_NOTE = "session closed"
SETTLED = CheckState.SATISFIED, CheckState.WAIVED


@dataclass(frozen=True)
class StoredCheck:
    """A check as it is stored: what the new state of it is compared with."""

    key: str
    state: CheckState | None
    required: bool
    id: int | None = None


@dataclass(frozen=True)
class StaleWatch:
    """When an open session turns stale: `after` past its last valid reading (or its
    start). `deadline` is None for a closed session; it is computed once, here."""

    deadline: datetime | None
    after: timedelta

    @classmethod
    def of(cls, facts: SessionFacts, after: timedelta) -> StaleWatch:
        if facts.closed_at is not None:
            return cls(None, after)
        last = max((r.measured_at for r in facts.readings if r.valid), default=facts.started_at)
        return cls(max(last, facts.started_at) + after, after)

    def is_due(self, now: datetime) -> bool:
        """Whether the shell must say if a stale alert was raised since the deadline."""
        return self.deadline is not None and now >= self.deadline


@dataclass(frozen=True)
class CheckUpdate:
    """A check as it is now; `changed`: its state differs from the stored one (or it is
    new), so it is announced (due or overdue)."""

    check: Check
    changed: bool


@dataclass(frozen=True)
class DroppedCheck:
    """A stored check the protocol no longer requires; `waived`: it was still open, so
    it is waived as `NO_LONGER_REQUIRED`."""

    key: str
    waived: bool


@dataclass(frozen=True)
class AlertDecision:
    """An alert change to store, in order. `check_key`: the alert is about that check,
    whose stored id the shell writes into a newly raised alert (a check new in this
    evaluation has an id only once stored)."""

    change: AlertChange
    check_key: str | None = None


@dataclass(frozen=True)
class Evaluation:
    """What a session's facts and the time make of it, for the shell to store."""

    checks: tuple[CheckUpdate, ...]
    dropped: tuple[DroppedCheck, ...]
    alerts: tuple[AlertDecision, ...]
    phase: Phase
    phase_changed: bool

    @property
    def session_changed(self) -> bool:
        """Whether the session shows differently (a check's state, a dropped check, the
        phase): a `session_updated` event."""
        return self.phase_changed or bool(self.dropped) or any(c.changed for c in self.checks)


def alarm_policy(safety: SafetyRule) -> AlarmPolicy:
    """The alarm behaviour a protocol's `[safety]` numbers ask for (DESIGN.md "Alarm
    behaviour"): every alert of a session is reconciled, snoozed and timed with it."""
    return AlarmPolicy(
        renotify_high_every=safety.renotify_high_every,
        snooze_total=safety.snooze_total,
        snooze_total_high=safety.snooze_total_high,
        worsening_systolic=safety.worsening_systolic,
        worsening_diastolic=safety.worsening_diastolic,
    )


class _OpenAlerts:
    """The session's open alerts by condition while decisions pile up, as the shell's
    rows will be once it stored them: each decision sees the ones before it."""

    def __init__(
        self,
        alerts: Iterable[Alert],
        session_id: int | None,
        chair_id: int | None,
        policy: AlarmPolicy,
    ):
        self._by_condition = {a.condition: a for a in alerts if a.is_open}
        self._session_id = session_id
        self._chair_id = chair_id
        self._policy = policy
        self.decisions: list[AlertDecision] = []

    def __contains__(self, condition: str) -> bool:
        return condition in self._by_condition

    def reconcile(
        self,
        findings: Iterable[Finding],
        clears: Iterable[str],
        now: datetime,
        *,
        reading_id: int | None = None,
        check: StoredCheck | None = None,
        check_key: str | None = None,
        clear_note: str = "condition cleared",
    ) -> None:
        changes = reconcile(
            list(self._by_condition.values()),
            findings,
            clears,
            now,
            session_id=self._session_id,
            chair_id=self._chair_id,
            reading_id=reading_id,
            check_id=None if check is None else check.id,
            clear_note=clear_note,
            policy=self._policy,
        )
        for change in changes:
            self.decisions.append(AlertDecision(change, check_key))
            if change.after.state is AlertState.RESOLVED:
                self._by_condition.pop(change.after.condition, None)
            else:
                self._by_condition[change.after.condition] = change.after


def evaluate(
    facts: SessionFacts,
    schedule: CheckSchedule,
    protocol: Protocol,
    open_alerts: Sequence[Alert],
    stored_checks: Mapping[str, StoredCheck],
    now: datetime,
    trigger: Reading | None = None,
    *,
    phase: Phase,
    stale: StaleWatch,
    stale_raised_since_deadline: bool = False,
    session_id: int | None = None,
    chair_id: int | None = None,
    patient_name: str | None = None,
) -> Evaluation:
    """Bring a session's checks, alerts and phase up to date with its facts and `now`.

    `trigger`: the reading just stored (its id set), whose findings raise and clear
    alerts; `phase`: the stored one. `stale_raised_since_deadline` (asked by the shell
    only when `stale.is_due(now)`): a stale alert was raised at or after the deadline,
    so none is raised again until a reading moves the deadline. `patient_name`: whom
    a late reading of a closed session's alert names, so the patient can be called back."""
    is_open = facts.closed_at is None
    # A closed session's chair may hold the next patient: what it raises now (a late
    # reading) is the ward's, named by the patient, not the chair's.
    alerts = _OpenAlerts(
        open_alerts, session_id, chair_id if is_open else None, alarm_policy(protocol.safety)
    )

    # 1. Checks: each with its state; settled ones clear their overdue alert.
    computed = schedule.checks(facts, now)
    updates: list[CheckUpdate] = []
    settled: list[str] = []
    for check in computed:
        stored = stored_checks.get(check.key)
        previous = None if stored is None else stored.state
        updates.append(CheckUpdate(check, previous is not check.state))
        if check.state in SETTLED:
            settled.append(_overdue_condition(check.key))
    keys = {c.key for c in computed}
    dropped = tuple(
        DroppedCheck(key, stored.state in (CheckState.PENDING, CheckState.DUE))
        for key, stored in stored_checks.items()
        if key not in keys and stored.required
    )
    settled.extend(_overdue_condition(d.key) for d in dropped)

    # 2. What a new reading shows. A closed session raises only for a late reading
    # (measured before the close, delivered after), with the patient's name; a partial
    # frame is assessed too (DESIGN.md "Partial frames"), though it settles nothing.
    if (
        trigger is not None
        and trigger.valid
        and facts.closed_at is not None
        and trigger.measured_at <= facts.closed_at
    ):
        _assess_late_reading(facts, schedule, alerts, trigger, now, patient_name)
    if trigger is not None and (trigger.valid or trigger.incomplete) and is_open:
        _assess_reading(facts, schedule, protocol, alerts, trigger, now)
    if trigger is not None and trigger.valid and is_open:
        # A reading taken after an overdue check's window settles its alert.
        settled.extend(
            _overdue_condition(check.key)
            for check in computed
            if check.state is CheckState.OVERDUE
            and check.window_end is not None
            and trigger.measured_at >= check.window_end
        )

    # 3. Checks that went overdue raise an alert each; settled ones clear.
    if is_open:
        for update in updates:
            if update.changed and update.check.state is CheckState.OVERDUE:
                check = update.check
                finding = Finding(
                    AlertKind.CHECK_OVERDUE,
                    Priority.MEDIUM,
                    f"{check.label}: overdue (no reading in its window)",
                    subject=check.key,
                )
                alerts.reconcile(
                    [finding], [], now, check=stored_checks.get(check.key), check_key=check.key
                )
    if settled:
        alerts.reconcile([], settled, now, clear_note="check settled")

    # 4. Staleness: an open session with no reading for `stale.after`.
    if stale.deadline is not None:
        if now >= stale.deadline:
            if not stale_raised_since_deadline:
                minutes = stale.after.total_seconds() / 60
                finding = Finding(
                    AlertKind.STALE, Priority.LOW, f"No reading for {minutes:g} min: check the cuff"
                )
                alerts.reconcile([finding], [], now)
        elif AlertKind.STALE.value in alerts:
            alerts.reconcile([], [AlertKind.STALE.value], now, clear_note="a reading arrived")

    # 5. Phase.
    new_phase = schedule.phase(facts, now)
    return Evaluation(
        checks=tuple(updates),
        dropped=dropped,
        alerts=tuple(alerts.decisions),
        phase=new_phase,
        phase_changed=new_phase is not phase,
    )


def _overdue_condition(check_key: str) -> str:
    return f"{AlertKind.CHECK_OVERDUE.value}:{check_key}"


def _assess_reading(
    facts: SessionFacts,
    schedule: CheckSchedule,
    protocol: Protocol,
    alerts: _OpenAlerts,
    reading: Reading,
    now: datetime,
) -> None:
    """The reading's findings; only the latest valid reading clears what an earlier one
    raised (a late record of an older reading clears nothing)."""
    first_dose = facts.first_dose_at
    post_dose = first_dose is not None and reading.measured_at > first_dose
    baseline = schedule.baseline(facts)
    assessment = schedule.thresholds.assess(reading, baseline, post_dose)
    latest = all(r.measured_at <= reading.measured_at for r in facts.readings if r.valid)
    clears = {k.value for k in assessment.clears} if latest else set()
    alerts.reconcile(assessment.findings, clears, now, reading_id=reading.id)
    if not post_dose:
        age = schedule.age_at_start(facts)
        found = schedule.thresholds.baseline_findings(
            baseline, age, protocol.baseline.consider_deferring_when_elevated
        )
        gone = {k.value for k in BASELINE_KINDS} - {f.kind.value for f in found}
        alerts.reconcile(found, gone, now, reading_id=reading.id)


def _assess_late_reading(
    facts: SessionFacts,
    schedule: CheckSchedule,
    alerts: _OpenAlerts,
    reading: Reading,
    now: datetime,
    patient_name: str | None,
) -> None:
    """A reading of a closed session that crosses a threshold alerts, naming the patient
    (DESIGN.md "Closing"); it clears nothing: the session is over."""
    first_dose = facts.first_dose_at
    post_dose = first_dose is not None and reading.measured_at > first_dose
    assessment = schedule.thresholds.assess(reading, schedule.baseline(facts), post_dose)
    who = patient_name or "the patient"
    findings = [
        replace(
            f,
            message=f"{who}: {f.message} (measured before the session closed, delivered "
            "after it): call the patient back",
        )
        for f in assessment.findings
    ]
    if findings:
        alerts.reconcile(findings, [], now, reading_id=reading.id)


def side_effect_alerts(
    protocol: Protocol,
    open_alerts: Sequence[Alert],
    effect: ObservedSideEffect,
    now: datetime,
    *,
    session_id: int | None = None,
    chair_id: int | None = None,
) -> list[AlertChange]:
    """A severe side effect (the protocol's severity or more) raises a medium alert of its
    own (DESIGN.md "Monitor until stable"); its follow-up check is the schedule's."""
    if effect.severity < protocol.safety.severe_side_effect_severity:
        return []
    minutes = protocol.safety.side_effect_check_after.total_seconds() / 60
    finding = Finding(
        AlertKind.SEVERE_SIDE_EFFECT,
        Priority.MEDIUM,
        f"Severe {effect.effect.value} (severity {effect.severity}): check the patient and "
        f"their blood pressure within {minutes:g} min",
        subject=f"s{effect.id}",
    )
    return reconcile(
        open_alerts,
        [finding],
        [],
        now,
        session_id=session_id,
        chair_id=chair_id,
        policy=alarm_policy(protocol.safety),
    )


# -- doses and closing -------------------------------------------------------------------


# The order a dose's flags are stored and shown in.
DOSE_FLAG_ORDER = (DoseFlag.HOLD_OVERRIDDEN, DoseFlag.NO_BASELINE, DoseFlag.NO_RECENT_BP)


def dose_flags(protocol: Protocol, decision: GateDecision) -> tuple[DoseFlag, ...]:
    """How a dose is flagged: what the dosing gate (`vitalsd.gates.gate_dose`) found it
    lacked or overrode; `no_baseline` only where the protocol requires a baseline."""
    flags = set(decision.flags)
    if not protocol.baseline.required:
        flags.discard(DoseFlag.NO_BASELINE)
    ordered = [f for f in DOSE_FLAG_ORDER if f in flags]
    return (*ordered, *sorted(flags - set(ordered), key=lambda f: f.value))


def gate_overrides(
    open_alerts: Iterable[Alert], by: str, reason: str, now: datetime
) -> list[AlertChange]:
    """A clinician doses over what the gate found: each standing severe or hold alert
    that was not yet acknowledged is acknowledged, noting why (it stays open: only its
    resolution lifts it for the next dose)."""
    return hold_overrides(
        [
            a
            for a in open_alerts
            if a.kind in DOSE_BLOCKING_KINDS and a.state in (AlertState.ACTIVE, AlertState.SNOOZED)
        ],
        by,
        reason,
        now,
    )


def hold_overrides(
    holds: Iterable[Alert], by: str, reason: str, now: datetime
) -> list[AlertChange]:
    """A clinician doses over standing dosing holds: each is acknowledged, noting why."""
    changes = []
    for hold in holds:
        after, audit = hold.acknowledge(by, now)
        changes.append(
            AlertChange(hold, after, replace(audit, note=f"dosing hold overridden: {reason}"))
        )
    return changes


def infusion_running(schedule: CheckSchedule, facts: SessionFacts) -> bool:
    """Whether an infusion of the session is still running (a close must wait)."""
    return schedule.doses_are_infusions and any(d.ended_at is None for d in facts.doses)


def ended_with_session(
    open_alerts: Iterable[Alert], now: datetime, by: str = SYSTEM, reason: str | None = None
) -> list[AlertChange]:
    """The alerts a close resolves: every open alert of the session, noting the close's
    reason (DESIGN.md "Closing": a closed session leaves nothing on its chair; the gate
    made a clinician give a reason for any that still mattered)."""
    note = SESSION_CLOSED_NOTE if reason is None else f"{SESSION_CLOSED_NOTE}: {reason}"
    return [
        AlertChange(alert, *alert.resolve(by, now, note)) for alert in open_alerts if alert.is_open
    ]

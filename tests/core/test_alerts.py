"""The alert state machine: lifecycle, snooze bounds, escalation timing, dedupe, audit."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from tests.core.clinic_time import at
from vitalsd.alerts import SYSTEM, Alert, reconcile
from vitalsd.domain import AlertKind, AlertState, Priority, Role
from vitalsd.errors import InvalidInput, InvalidTransition
from vitalsd.thresholds import Finding

DELAY = timedelta(minutes=2)
SEVERE = Finding(AlertKind.SEVERE_HYPERTENSION, Priority.HIGH, "Severe hypertension 184/102")
LOW_PULSE = Finding(AlertKind.PULSE_OUT_OF_RANGE, Priority.MEDIUM, "Pulse 44/min")


def raised(finding: Finding = SEVERE, minutes: float = 10) -> Alert:
    return Alert.raise_(finding, at(minutes), session_id=1, chair_id=2, reading_id=3)[0]


def test_raise_is_active_and_audited_as_the_system() -> None:
    alert, audit = Alert.raise_(SEVERE, at(10), session_id=1, reading_id=3)
    assert (alert.state, alert.reading_id) == (AlertState.ACTIVE, 3)
    assert (audit.action, audit.by, audit.at, audit.to_state) == (
        "raised",
        SYSTEM,
        at(10),
        AlertState.ACTIVE,
    )


def test_acknowledge_records_who_and_when() -> None:
    alert, audit = raised().acknowledge("nurse.kim", at(11))
    assert (alert.state, alert.acknowledged_by, alert.acknowledged_at) == (
        AlertState.ACKNOWLEDGED,
        "nurse.kim",
        at(11),
    )
    assert (audit.action, audit.by, audit.from_state) == (
        "acknowledged",
        "nurse.kim",
        AlertState.ACTIVE,
    )


def test_resolved_alert_cannot_be_acknowledged() -> None:
    resolved = raised().resolve("nurse.kim", at(11), "re-measured, fine")[0]
    with pytest.raises(InvalidTransition):
        resolved.acknowledge("nurse.kim", at(12))


def test_user_resolution_needs_a_note() -> None:
    with pytest.raises(InvalidInput):
        raised().resolve("nurse.kim", at(11), "  ")


def test_snooze_is_time_limited() -> None:
    alert, audit = raised().snooze("nurse.kim", at(11), 5, max_snooze=timedelta(minutes=15))
    assert (alert.state, alert.snoozed_until, audit.by) == (
        AlertState.SNOOZED,
        at(16),
        "nurse.kim",
    )


@pytest.mark.parametrize("minutes", [0, -1, 15.5, 600])
def test_snooze_outside_the_bound_is_refused(minutes: float) -> None:
    with pytest.raises(InvalidInput):
        raised().snooze("nurse.kim", at(11), minutes, max_snooze=timedelta(minutes=15))


def test_snooze_runs_out_and_the_alert_is_active_again() -> None:
    snoozed = raised(LOW_PULSE).snooze("nurse.kim", at(11), 5)[0]
    assert snoozed.due_transitions(at(15.9), DELAY) == []
    ((after, audit),) = snoozed.due_transitions(at(16), DELAY)
    assert (after.state, audit.action, audit.by) == (AlertState.ACTIVE, "snooze_expired", SYSTEM)


def test_unacknowledged_high_priority_alert_escalates_to_clinicians_after_the_delay() -> None:
    alert = raised(minutes=10)
    assert alert.next_deadline(DELAY) == at(12)
    assert alert.due_transitions(at(11.99), DELAY) == []
    ((after, audit),) = alert.due_transitions(at(12), DELAY)
    assert (after.addressed_to, after.escalated_at, audit.action) == (
        Role.CLINICIAN,
        at(12),
        "escalated",
    )


def test_escalation_happens_once() -> None:
    escalated = raised().due_transitions(at(12), DELAY)[0][0]
    assert (escalated.next_deadline(DELAY), escalated.due_transitions(at(30), DELAY)) == (None, [])


def test_acknowledged_alert_does_not_escalate() -> None:
    acknowledged = raised().acknowledge("nurse.kim", at(11))[0]
    assert acknowledged.due_transitions(at(30), DELAY) == []


def test_medium_priority_alert_does_not_escalate() -> None:
    assert raised(LOW_PULSE).due_transitions(at(30), DELAY) == []


def test_snoozed_high_alert_escalates_the_delay_after_its_snooze_ends() -> None:
    snoozed = raised(minutes=10).snooze("nurse.kim", at(11), 5)[0]
    steps = snoozed.due_transitions(at(18), DELAY)
    assert [(s[1].action, s[1].at) for s in steps] == [
        ("snooze_expired", at(16)),
        ("escalated", at(18)),
    ]


def test_persisting_condition_raises_no_duplicate() -> None:
    alert = raised()
    saved = replace(alert, id=7)
    assert reconcile([saved], [SEVERE], [], at(15), session_id=1) == []


def test_worse_finding_raises_the_priority_and_needs_a_new_acknowledgement() -> None:
    medium = Finding(AlertKind.HYPOTENSION, Priority.MEDIUM, "Hypotension 86/58")
    high = Finding(AlertKind.HYPOTENSION, Priority.HIGH, "Hypotension 70/40")
    acknowledged = raised(medium).acknowledge("nurse.kim", at(11))[0]
    (change,) = reconcile([acknowledged], [high], [], at(14), reading_id=9)
    assert (change.after.priority, change.after.state, change.after.reading_id) == (
        Priority.HIGH,
        AlertState.ACTIVE,
        9,
    )
    assert (change.audit.action, change.audit.note) == ("priority_raised", "medium -> high")


def test_new_condition_raises_an_alert_beside_the_open_one() -> None:
    changes = reconcile([raised()], [LOW_PULSE], [], at(15), session_id=1)
    assert [(c.before, c.after.kind) for c in changes] == [(None, AlertKind.PULSE_OUT_OF_RANGE)]


def test_cleared_condition_resolves_its_alert_as_the_system() -> None:
    (change,) = reconcile([raised()], [], ["severe_hypertension"], at(20))
    assert (change.after.state, change.audit.by, change.after.resolution_note) == (
        AlertState.RESOLVED,
        SYSTEM,
        "condition cleared",
    )


def test_unverified_alert_is_confirmed_by_a_clean_severe_reading() -> None:
    unverified = raised(Finding(AlertKind.SEVERE_HYPERTENSION, Priority.HIGH, "x", unverified=True))
    (change,) = reconcile([unverified], [SEVERE], [], at(12), reading_id=11)
    assert (change.after.unverified, change.after.reading_id, change.audit.action) == (
        False,
        11,
        "verified",
    )


def test_dosing_hold_is_addressed_to_the_clinician_from_the_start() -> None:
    hold = raised(Finding(AlertKind.DOSING_HOLD, Priority.HIGH, "hold"))
    assert hold.addressed_to is Role.CLINICIAN


def test_check_overdue_alerts_are_one_per_check() -> None:
    first = Finding(AlertKind.CHECK_OVERDUE, Priority.MEDIUM, "a", subject="post_dose:d1")
    second = Finding(AlertKind.CHECK_OVERDUE, Priority.MEDIUM, "b", subject="close")
    changes = reconcile([raised(first)], [first, second], [], at(40))
    assert [c.after.condition for c in changes] == ["check_overdue:close"]

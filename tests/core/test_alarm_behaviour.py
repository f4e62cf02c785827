"""DESIGN.md "Alarm behaviour" in the pure alert state machine (issue #13, findings 8, 9)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.core.clinic_time import at
from vitalsd.alerts import AlarmPolicy, Alert, reconcile
from vitalsd.domain import AlertKind, AlertState, Priority
from vitalsd.errors import InvalidInput
from vitalsd.thresholds import Finding

POLICY = AlarmPolicy()
DELAY = timedelta(minutes=2)


def severe(systolic: float, diastolic: float) -> Finding:
    return Finding(
        AlertKind.SEVERE_HYPERTENSION,
        Priority.HIGH,
        f"Severe hypertension {systolic:g}/{diastolic:g} mmHg",
        systolic=systolic,
        diastolic=diastolic,
    )


def rise(systolic: float, diastolic: float) -> Finding:
    return Finding(
        AlertKind.RISE_OVER_BASELINE,
        Priority.MEDIUM,
        f"Rise {systolic:g}/{diastolic:g}",
        systolic=systolic,
        diastolic=diastolic,
    )


def raised(finding: Finding, reading_id: int = 1) -> Alert:
    (change,) = reconcile([], [finding], [], at(0), reading_id=reading_id, policy=POLICY)
    return change.after


def test_finding_8_a_high_alert_latches_when_its_condition_clears() -> None:
    alert = raised(severe(182, 100))
    (change,) = reconcile([alert], [], [alert.condition], at(1), policy=POLICY)
    assert change.after.state is AlertState.ACTIVE
    assert change.after.condition_cleared_at == at(1)
    assert change.audit.action == "condition_cleared"


def test_finding_8_the_latched_alert_is_the_same_alert_when_the_condition_returns() -> None:
    alert = raised(severe(182, 100))
    (cleared,) = reconcile([alert], [], [alert.condition], at(1), policy=POLICY)
    (back,) = reconcile([cleared.after], [severe(183, 104)], [], at(2), reading_id=3, policy=POLICY)
    assert back.before is not None and back.after.condition_cleared_at is None
    assert back.after.latest_reading_id == 3
    assert back.after.reading_id == 1  # the value that raised it stays


def test_acknowledging_a_latched_alert_resolves_it() -> None:
    alert = raised(severe(188, 112))
    (cleared,) = reconcile([alert], [], [alert.condition], at(1), policy=POLICY)
    acknowledged, _ = cleared.after.acknowledge("nurse", at(2))
    settled = acknowledged.settle(at(2))
    assert settled is not None and settled[0].state is AlertState.RESOLVED


def test_an_acknowledged_high_alert_resolves_when_its_condition_clears() -> None:
    acknowledged, _ = raised(severe(182, 100)).acknowledge("nurse", at(1))
    (change,) = reconcile([acknowledged], [], [acknowledged.condition], at(2), policy=POLICY)
    assert change.after.state is AlertState.RESOLVED


def test_a_medium_alert_clears_itself() -> None:
    alert = raised(rise(165, 95))
    (change,) = reconcile([alert], [], [alert.condition], at(1), policy=POLICY)
    assert change.after.state is AlertState.RESOLVED


@pytest.mark.parametrize(
    ("systolic", "diastolic", "sounds_again"),
    [(230, 135, True), (192, 100, True), (182, 105, True), (191, 104, False)],
)
def test_finding_9_an_acknowledged_alert_that_worsens_sounds_again(
    systolic: float, diastolic: float, sounds_again: bool
) -> None:
    acknowledged, _ = raised(severe(182, 100)).acknowledge("nurse", at(1))
    (change,) = reconcile(
        [acknowledged], [severe(systolic, diastolic)], [], at(3), reading_id=9, policy=POLICY
    )
    assert (change.after.state is AlertState.ACTIVE) is sounds_again
    assert change.after.latest_reading_id == 9
    assert change.after.latest_message == f"Severe hypertension {systolic:g}/{diastolic:g} mmHg"
    if sounds_again:
        assert change.audit.action == "worsened"
        assert change.after.notified_at == at(3)


def test_hypotension_worsens_downwards() -> None:
    low = Finding(
        AlertKind.HYPOTENSION,
        Priority.MEDIUM,
        "low",
        systolic=84,
        diastolic=51,
        lower_is_worse=True,
    )
    lower = Finding(
        AlertKind.HYPOTENSION,
        Priority.MEDIUM,
        "lower",
        systolic=74,
        diastolic=50,
        lower_is_worse=True,
    )
    acknowledged, _ = raised(low).acknowledge("nurse", at(1))
    (change,) = reconcile([acknowledged], [lower], [], at(2), policy=POLICY)
    assert change.after.state is AlertState.ACTIVE


def test_finding_9_snoozes_add_up_to_five_minutes_for_a_high_alert() -> None:
    alert = raised(severe(182, 100))
    snoozed, _ = alert.snooze("nurse", at(1), 3, policy=POLICY)
    renewed, _ = snoozed.snooze("nurse", at(2), 3, policy=POLICY)  # until 5: 4 min in all
    assert renewed.snoozed_total == timedelta(minutes=4)
    last, _ = renewed.snooze("nurse", at(3), 3, policy=POLICY)  # silent from 1 to 6
    assert last.snoozed_total == timedelta(minutes=5)
    with pytest.raises(InvalidInput, match="at most 5 minutes in all; 0 left"):
        last.snooze("nurse", at(4), 3, policy=POLICY)


def test_snoozes_of_a_medium_alert_add_up_to_thirty_minutes() -> None:
    alert = raised(rise(165, 95))
    first, _ = alert.snooze("nurse", at(0), 20, policy=POLICY)
    expired, _ = first.expire_snooze(at(20))
    second, _ = expired.snooze("nurse", at(21), 10, policy=POLICY)
    assert second.snoozed_total == timedelta(minutes=30)
    again, _ = second.expire_snooze(at(31))
    with pytest.raises(InvalidInput):
        again.snooze("nurse", at(32), 1, policy=POLICY)


def test_finding_9_an_unacknowledged_high_alert_re_notifies_every_two_minutes() -> None:
    alert = raised(severe(182, 100))
    steps = alert.due_transitions(at(7), DELAY, POLICY)
    assert [audit.action for _, audit in steps] == ["escalated", "renotified", "renotified"]
    assert [audit.at for _, audit in steps] == [at(2), at(4), at(6)]
    assert steps[-1][0].next_deadline(DELAY, POLICY) == at(8)


def test_an_acknowledged_alert_does_not_re_notify() -> None:
    acknowledged, _ = raised(severe(182, 100)).acknowledge("nurse", at(1))
    assert acknowledged.due_transitions(at(30), DELAY, POLICY) == []
    assert acknowledged.next_deadline(DELAY, POLICY) is None


def test_without_a_policy_an_alert_behaves_as_before() -> None:
    (change,) = reconcile([], [severe(182, 100)], [], at(0))
    (cleared,) = reconcile([change.after], [], [change.after.condition], at(1))
    assert cleared.after.state is AlertState.RESOLVED
    assert change.after.due_transitions(at(30), DELAY) == [change.after.escalate(at(2))]

"""DESIGN.md "Safety rules that hold in every preset", in the pure core (issue #13).

Each test names the finding of issue #13 it replays; times are minutes after the start.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from tests.core.clinic_time import at, dose, facts, reading
from vitalsd.alerts import Alert
from vitalsd.domain import AlertKind, AlertState, CheckState, DoseFlag, Priority
from vitalsd.gates import gate_close, gate_dose
from vitalsd.protocol import PRESETS, load_protocol
from vitalsd.schedule import REQUIRED_AFTER_WINDOW_REASON, Check, CheckSchedule
from vitalsd.thresholds import Finding

SCHEDULES = {name: CheckSchedule(load_protocol(name)) for name in PRESETS}
KAP = SCHEDULES["ketamine-psychotherapy"]


def alert(kind: AlertKind, priority: Priority, state: AlertState = AlertState.ACTIVE) -> Alert:
    raised, _ = Alert.raise_(Finding(kind, priority, kind.value), at(0), session_id=1)
    if state is AlertState.ACKNOWLEDGED:
        raised, _ = raised.acknowledge("nurse", at(1))
    return raised


# -- dosing gate ------------------------------------------------------------------------


@pytest.mark.parametrize("preset", PRESETS)
def test_finding_1_a_hold_range_latest_reading_stops_the_first_dose_whatever_the_mean(
    preset: str,
) -> None:
    session = facts(reading(1, 120, 70), reading(4, 185, 100))
    decision = gate_dose(session, SCHEDULES[preset], (), at(6), overridden=False)
    assert decision.blocked
    assert any("latest reading 185/100" in why for why in decision.blocked_by)


def test_finding_1_179_99_is_in_the_hold_range_and_stops_the_dose() -> None:
    session = facts(reading(1, 120, 70), reading(4, 179, 99))
    assert gate_dose(session, KAP, (), at(6), overridden=False).blocked


def test_finding_1_an_unresolved_severe_alert_stops_the_dose() -> None:
    session = facts(reading(1, 120, 70), reading(4, 122, 78))
    severe = alert(AlertKind.SEVERE_HYPERTENSION, Priority.HIGH)
    decision = gate_dose(session, KAP, (severe,), at(6), overridden=False)
    assert decision.blocked_by == ("the severe hypertension alert is not resolved",)


def test_finding_2_acknowledging_a_hold_does_not_lift_it() -> None:
    session = facts(reading(1, 172, 104), reading(3, 150, 96))
    hold = alert(AlertKind.DOSING_HOLD, Priority.HIGH, AlertState.ACKNOWLEDGED)
    assert gate_dose(session, KAP, (hold,), at(6), overridden=False).blocked


def test_finding_2_a_new_hold_range_reading_re_arms_the_gate() -> None:
    session = facts(reading(1, 150, 90), reading(2, 140, 88), reading(5, 188, 118))
    assert gate_dose(session, KAP, (), at(6), overridden=False).blocked


def test_finding_3_a_booster_after_a_severe_reading_is_gated() -> None:
    session = facts(reading(1, 122, 78), dose(5), reading(40, 186, 112))
    severe = alert(AlertKind.SEVERE_HYPERTENSION, Priority.HIGH)
    decision = gate_dose(session, KAP, (severe,), at(42), overridden=False)
    assert decision.blocked
    assert len(decision.blocked_by) == 2


def test_an_overridden_dose_is_flagged_hold_overridden() -> None:
    session = facts(reading(1, 165, 100), reading(3, 166, 101))
    decision = gate_dose(session, KAP, (), at(6), overridden=True)
    assert DoseFlag.HOLD_OVERRIDDEN in decision.flags


def test_a_clear_gate_neither_blocks_nor_flags() -> None:
    decision = gate_dose(facts(reading(1), reading(3)), KAP, (), at(6), overridden=True)
    assert decision == type(decision)((), frozenset())


def test_first_dose_without_any_reading_is_flagged_no_baseline() -> None:
    assert gate_dose(facts(), KAP, (), at(6), overridden=False).flags == {DoseFlag.NO_BASELINE}


@pytest.mark.parametrize(("last_reading", "flagged"), [(30, False), (29.9, True)])
def test_a_dose_with_no_reading_in_the_30_minutes_before_it_is_flagged_no_recent_bp(
    last_reading: float, flagged: bool
) -> None:
    session = facts(reading(0), dose(5), reading(last_reading))
    decision = gate_dose(session, KAP, (), at(60), overridden=False)
    assert (DoseFlag.NO_RECENT_BP in decision.flags) is flagged


@pytest.mark.parametrize(
    "flag", [DoseFlag.NO_BASELINE, DoseFlag.NO_RECENT_BP, DoseFlag.HOLD_OVERRIDDEN]
)
def test_finding_12_a_flagged_dose_always_gets_the_post_dose_check(flag: DoseFlag) -> None:
    # Course session 5, normal baseline, no increase: no post-dose check for a plain dose.
    plain = facts(reading(1), dose(5))
    flagged = facts(reading(1), dose(5, flags=frozenset({flag})))
    assert not [c for c in KAP.checks(plain, at(40)) if c.key.startswith("post_dose")]
    (check,) = [c for c in KAP.checks(flagged, at(40)) if c.key.startswith("post_dose")]
    assert check.state is CheckState.OVERDUE


# -- monitor until stable ----------------------------------------------------------------


def follow_ups(session_checks: Sequence[Check]) -> list[Check]:
    return [c for c in session_checks if c.key.startswith("follow_up")]


@pytest.mark.parametrize(
    ("systolic", "diastolic", "opens_after"),
    [(162, 88, 10), (168, 90, 10), (181, 100, 5), (150, 112, 5)],
)
def test_an_unstable_post_dose_reading_asks_for_a_follow_up(
    systolic: float, diastolic: float, opens_after: float
) -> None:
    session = facts(reading(1), dose(5), reading(25, systolic, diastolic))
    (check,) = follow_ups(KAP.checks(session, at(26)))
    assert check.window_start == at(25 + opens_after)
    assert check.state is CheckState.PENDING


def test_follow_ups_repeat_until_a_reading_is_back_below_the_ranges() -> None:
    chain = facts(reading(1), dose(5), reading(25, 170, 95), reading(35, 168, 94))
    assert [c.window_start for c in follow_ups(KAP.checks(chain, at(36)))] == [at(35), at(45)]
    settled = facts(*chain.readings, *chain.doses, reading(45, 130, 80))
    assert all(c.state is CheckState.SATISFIED for c in follow_ups(KAP.checks(settled, at(50))))


def test_a_rise_over_baseline_is_unstable_and_asks_for_a_follow_up() -> None:
    session = facts(reading(1, 110, 70), reading(3, 110, 70), dose(5), reading(25, 152, 80))
    assert follow_ups(KAP.checks(session, at(26)))


def test_a_follow_up_without_a_reading_goes_overdue() -> None:
    session = facts(reading(1), dose(5), reading(25, 185, 100))
    (check,) = follow_ups(KAP.checks(session, at(41)))
    assert check.state is CheckState.OVERDUE


# -- requirements apply forward (finding 11) ---------------------------------------------


def test_finding_11_a_later_increase_does_not_make_an_earlier_check_overdue() -> None:
    session = facts(reading(1), dose(5), reading(20), dose(50, increase=True))
    checks = {c.key: c for c in KAP.checks(session, at(51))}
    first, second = sorted(k for k in checks if k.startswith("post_dose"))
    assert checks[first].state is CheckState.WAIVED
    assert checks[first].waiver_reason == REQUIRED_AFTER_WINDOW_REASON
    assert checks[second].state is CheckState.PENDING


def test_finding_11_an_elevated_reading_entered_late_waives_the_closed_windows() -> None:
    late = facts(reading(1, 150, 95, received=40), reading(2, 150, 95, received=40), dose(5))
    checks = KAP.checks(late, at(41))
    assert not [c for c in checks if c.state is CheckState.OVERDUE and c.key != "baseline"]
    waived = [c for c in checks if c.waiver_reason == REQUIRED_AFTER_WINDOW_REASON]
    assert [c.key for c in waived] == [c.key for c in checks if c.key.startswith("post_dose")]


def test_the_same_elevated_reading_on_time_makes_the_check_overdue() -> None:
    on_time = facts(reading(1, 150, 95), reading(2, 150, 95), dose(5))
    (check,) = [c for c in KAP.checks(on_time, at(41)) if c.key.startswith("post_dose")]
    assert check.state is CheckState.OVERDUE


# -- closing -----------------------------------------------------------------------------


def test_finding_6_a_reading_hours_before_the_close_does_not_satisfy_the_close_check() -> None:
    session = facts(reading(1), dose(5), reading(70), course_session=5)
    decision = gate_close(session, KAP, (), at(250))
    assert decision.blocked_by == ("no close-of-session reading in the 15 minutes before closing",)
    assert decision.close_check_missing
    in_time = gate_close(session, KAP, (), at(85))
    assert not in_time.blocked
    assert not in_time.close_check_missing


def test_finding_6_an_active_rise_alert_stops_the_close() -> None:
    session = facts(reading(1), dose(5), reading(70, 178, 108), reading(80, 178, 108))
    rise = alert(AlertKind.RISE_OVER_BASELINE, Priority.MEDIUM)
    decision = gate_close(session, KAP, (rise,), at(82))
    assert "the medium rise over baseline alert is not resolved" in decision.blocked_by
    assert "the latest reading 178/108 mmHg is not stable" in decision.blocked_by
    assert not decision.close_check_missing  # blocked, but the close check itself was met


def test_a_low_priority_alert_does_not_stop_the_close() -> None:
    session = facts(reading(1), dose(5), reading(80))
    remeasure = alert(AlertKind.REMEASURE, Priority.LOW)
    assert not gate_close(session, KAP, (remeasure,), at(82)).blocked

"""The clinical decisions about one session (`vitalsd.evaluation`): a fixed clock, no
database. Times are minutes after the session start (`tests.core.clinic_time`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from tests.core.clinic_time import T0, at, dose, facts, reading
from vitalsd.alerts import SYSTEM, Alert
from vitalsd.domain import (
    AlertKind,
    AlertState,
    AuditAction,
    CheckKind,
    CheckState,
    DoseFlag,
    ObservedSideEffect,
    Phase,
    Priority,
    Reading,
    SessionFacts,
    SideEffect,
)
from vitalsd.evaluation import (
    DEFAULT_STALE_AFTER,
    NO_LONGER_REQUIRED,
    Evaluation,
    StaleWatch,
    StoredCheck,
    dose_flags,
    ended_with_session,
    evaluate,
    gate_overrides,
    hold_overrides,
    infusion_running,
    side_effect_alerts,
)
from vitalsd.gates import gate_dose
from vitalsd.protocol import load_protocol
from vitalsd.schedule import CheckSchedule
from vitalsd.thresholds import Finding

KAP = load_protocol("ketamine-psychotherapy")
SCHEDULE = CheckSchedule(KAP)
IV = load_protocol("iv-infusion")
SESSION, CHAIR = 7, 3


def open_alert(kind: AlertKind, minutes: float, priority: Priority = Priority.HIGH) -> Alert:
    alert, _ = Alert.raise_(Finding(kind, priority, kind.value), at(minutes), session_id=SESSION)
    return replace(alert, id=100 + int(minutes))


def stored(session: SessionFacts, minutes: float) -> dict[str, StoredCheck]:
    """The checks as a shell that stored the evaluation at `minutes` holds them."""
    return {
        c.key: StoredCheck(c.key, c.state, True, id=200 + i)
        for i, c in enumerate(SCHEDULE.checks(session, at(minutes)))
    }


def run(
    session: SessionFacts,
    minutes: float,
    trigger: Reading | None = None,
    *,
    alerts: tuple[Alert, ...] = (),
    checks: dict[str, StoredCheck] | None = None,
    phase: Phase | None = None,
    stale_raised: bool = False,
) -> Evaluation:
    now = at(minutes)
    return evaluate(
        session,
        SCHEDULE,
        KAP,
        alerts,
        {} if checks is None else checks,
        now,
        trigger,
        phase=SCHEDULE.phase(session, now) if phase is None else phase,
        stale=StaleWatch.of(session, DEFAULT_STALE_AFTER),
        stale_raised_since_deadline=stale_raised,
        session_id=SESSION,
        chair_id=CHAIR,
    )


def raised(evaluation: Evaluation) -> list[AlertKind]:
    return [d.change.after.kind for d in evaluation.alerts if d.change.before is None]


def resolved(evaluation: Evaluation) -> list[str]:
    return [
        d.change.after.condition
        for d in evaluation.alerts
        if d.change.after.state is AlertState.RESOLVED
    ]


# -- what a reading shows ------------------------------------------------------------------


def test_a_severe_post_dose_reading_raises_a_high_alert_naming_the_reading() -> None:
    severe = reading(20, 186, 114)
    session = facts(reading(0), reading(2), dose(5), severe)
    evaluation = run(session, 20, severe, checks=stored(session, 20))
    (decision,) = [d for d in evaluation.alerts if d.change.before is None]
    after = decision.change.after
    assert (after.kind, after.priority, after.reading_id, after.session_id, after.chair_id) == (
        AlertKind.SEVERE_HYPERTENSION,
        Priority.HIGH,
        severe.id,
        SESSION,
        CHAIR,
    )


def test_the_latest_reading_clears_what_an_earlier_one_raised() -> None:
    # DESIGN.md "Alarm behaviour" (#13 finding 8): a high alert latches when its
    # condition clears, until someone acknowledges it; a medium one resolves.
    normal = reading(25, 124, 80)
    session = facts(reading(0), reading(2), dose(5), reading(20, 186, 114), normal)
    severe = open_alert(AlertKind.SEVERE_HYPERTENSION, 20)
    evaluation = run(session, 25, normal, alerts=(severe,), checks=stored(session, 25))
    assert resolved(evaluation) == []
    (latched,) = [d.change.after for d in evaluation.alerts]
    assert latched.condition_cleared_at == at(25)
    assert latched.state is AlertState.ACTIVE
    medium = open_alert(AlertKind.SEVERE_HYPERTENSION, 20, Priority.MEDIUM)
    evaluation = run(session, 25, normal, alerts=(medium,), checks=stored(session, 25))
    assert resolved(evaluation) == [AlertKind.SEVERE_HYPERTENSION.value]


def test_a_late_record_of_an_older_normal_reading_clears_nothing() -> None:
    late = reading(15, 124, 80)  # measured before the severe one, delivered after it
    session = facts(reading(0), reading(2), dose(5), late, reading(20, 186, 114))
    severe = open_alert(AlertKind.SEVERE_HYPERTENSION, 20)
    evaluation = run(session, 25, late, alerts=(severe,), checks=stored(session, 25))
    assert resolved(evaluation) == []


def test_finding_5_a_late_reading_of_a_closed_session_alerts_with_the_patients_name() -> None:
    # Before #13 a closed session raised nothing: a 196/118 measured before the close
    # and delivered after it was stored silently.
    severe = reading(20, 196, 118)
    session = facts(reading(0), reading(2), dose(5), severe, closed=30)
    now = at(40)
    evaluation = evaluate(
        session,
        SCHEDULE,
        KAP,
        (),
        stored(session, 40),
        now,
        severe,
        phase=Phase.CLOSED,
        stale=StaleWatch.of(session, DEFAULT_STALE_AFTER),
        session_id=SESSION,
        chair_id=CHAIR,
        patient_name="Alex Doe",
    )
    raised = [d.change.after for d in evaluation.alerts if d.change.before is None]
    assert [(a.kind, a.priority) for a in raised] == [
        (AlertKind.SEVERE_HYPERTENSION, Priority.HIGH)
    ]
    (alert,) = raised
    assert alert.message.startswith("Alex Doe: ")
    assert "196/118" in alert.message and "call the patient back" in alert.message
    # The chair may hold the next patient: the alert is the session's, not the chair's.
    assert (alert.session_id, alert.chair_id, alert.reading_id) == (SESSION, None, severe.id)


def test_a_normal_late_reading_of_a_closed_session_raises_nothing() -> None:
    normal = reading(20, 124, 80)
    session = facts(reading(0), reading(2), dose(5), normal, closed=30)
    evaluation = run(session, 40, normal, checks=stored(session, 40))
    assert evaluation.alerts == ()


def test_an_elevated_baseline_before_the_dose_raises_a_dosing_hold_for_the_clinician() -> None:
    high = reading(2, 166, 104)
    session = facts(reading(0, 164, 102), high)
    evaluation = run(session, 2, high, checks=stored(session, 2))
    holds = [
        d.change.after for d in evaluation.alerts if d.change.after.kind is AlertKind.DOSING_HOLD
    ]
    assert [(h.state, h.addressed_to.value) for h in holds] == [(AlertState.ACTIVE, "clinician")]


# -- stale --------------------------------------------------------------------------------


def test_the_stale_deadline_runs_from_the_last_valid_reading() -> None:
    session = facts(reading(0), reading(12))
    assert StaleWatch.of(session, timedelta(minutes=30)).deadline == at(42)


def test_a_session_without_readings_goes_stale_from_its_start() -> None:
    assert StaleWatch.of(facts(), timedelta(minutes=30)).deadline == T0 + timedelta(minutes=30)


def test_a_closed_session_has_no_stale_deadline() -> None:
    watch = StaleWatch.of(facts(reading(0), closed=10), timedelta(minutes=30))
    assert (watch.deadline, watch.is_due(at(100))) == (None, False)


def test_no_reading_for_the_stale_time_raises_a_low_stale_alert() -> None:
    session = facts(reading(0))
    assert raised(run(session, 29.9, checks=stored(session, 29.9))) == []
    evaluation = run(session, 30, checks=stored(session, 30))
    stale = [d.change.after for d in evaluation.alerts]
    assert [(a.kind, a.priority) for a in stale] == [(AlertKind.STALE, Priority.LOW)]
    assert stale[0].message == "No reading for 30 min: check the cuff"


def test_stale_is_not_raised_again_once_raised_since_the_deadline() -> None:
    session = facts(reading(0))
    assert run(session, 45, checks=stored(session, 45), stale_raised=True).alerts == ()


def test_a_reading_clears_the_open_stale_alert() -> None:
    fresh = reading(40)
    session = facts(reading(0), fresh)
    stale = open_alert(AlertKind.STALE, 30, Priority.LOW)
    evaluation = run(session, 40, fresh, alerts=(stale,), checks=stored(session, 40))
    assert resolved(evaluation) == [AlertKind.STALE.value]
    assert evaluation.alerts[-1].change.audit.note == "a reading arrived"


# -- checks -------------------------------------------------------------------------------


FIRST_DOSE = replace(dose(5), id=1)  # its post-dose check: `post_dose:d1`, 25-35 min


def first_course_session_dosed_at_5(*later: Reading) -> SessionFacts:
    """A course's first session: the 20-30 minute post-dose check is required. A reading
    at 20 min (before the window) keeps it from going stale before 50 min."""
    return facts(reading(0), reading(2), FIRST_DOSE, reading(20), *later, course_session=1)


def test_a_new_check_is_reported_as_changed() -> None:
    session = first_course_session_dosed_at_5()
    evaluation = run(session, 6)
    assert evaluation.checks and all(update.changed for update in evaluation.checks)
    assert evaluation.session_changed


def test_an_unchanged_session_reports_no_change() -> None:
    session = first_course_session_dosed_at_5()
    evaluation = run(session, 6, checks=stored(session, 6))
    assert not evaluation.session_changed
    assert evaluation.alerts == ()


def test_a_check_going_overdue_raises_a_medium_alert_about_that_check() -> None:
    session = first_course_session_dosed_at_5()
    checks = stored(session, 30)  # stored while the post-dose check was due
    evaluation = run(session, 36, checks=checks)
    (overdue,) = [u.check for u in evaluation.checks if u.changed]
    assert overdue.state is CheckState.OVERDUE
    (decision,) = evaluation.alerts
    after = decision.change.after
    assert (after.kind, after.priority, after.condition) == (
        AlertKind.CHECK_OVERDUE,
        Priority.MEDIUM,
        f"check_overdue:{overdue.key}",
    )
    assert (decision.check_key, after.check_id) == (overdue.key, checks[overdue.key].id)


def test_an_overdue_check_new_to_the_store_leaves_its_id_to_the_shell() -> None:
    session = first_course_session_dosed_at_5()
    (decision,) = run(session, 36, checks={}).alerts
    assert (decision.check_key, decision.change.after.check_id) == ("post_dose:d1", None)


def test_a_reading_after_an_overdue_window_settles_its_alert() -> None:
    late = reading(40)
    session = first_course_session_dosed_at_5(late)
    overdue = open_alert(AlertKind.CHECK_OVERDUE, 35, Priority.MEDIUM)
    overdue = replace(overdue, condition="check_overdue:post_dose:d1")
    evaluation = run(session, 40, late, alerts=(overdue,), checks=stored(session, 36))
    assert "check_overdue:post_dose:d1" in resolved(evaluation)


def test_a_check_no_longer_required_is_dropped_and_waived_while_still_open() -> None:
    session = first_course_session_dosed_at_5()
    extra = {
        "gone:open": StoredCheck("gone:open", CheckState.PENDING, True, id=1),
        "gone:done": StoredCheck("gone:done", CheckState.SATISFIED, True, id=2),
        "gone:before": StoredCheck("gone:before", CheckState.WAIVED, False, id=3),
    }
    evaluation = run(session, 6, checks={**stored(session, 6), **extra})
    assert {(d.key, d.waived) for d in evaluation.dropped} == {
        ("gone:open", True),
        ("gone:done", False),
    }
    assert NO_LONGER_REQUIRED == "no longer required by the protocol"


def test_the_phase_is_reported_against_the_stored_one() -> None:
    session = first_course_session_dosed_at_5()
    evaluation = run(session, 6, checks=stored(session, 6), phase=Phase.BASELINE)
    assert (evaluation.phase, evaluation.phase_changed) == (Phase.DOSED, True)
    assert evaluation.session_changed


# -- doses and closing --------------------------------------------------------------------


def flags_of(session: SessionFacts, minutes: float, *, overridden: bool) -> tuple[DoseFlag, ...]:
    return dose_flags(KAP, gate_dose(session, SCHEDULE, (), at(minutes), overridden=overridden))


def test_a_first_dose_without_a_baseline_is_flagged_no_baseline() -> None:
    flags = flags_of(facts(), 5, overridden=False)
    assert flags == (DoseFlag.NO_BASELINE,)
    assert [f.value for f in flags] == ["no_baseline"]


def test_a_dose_after_a_baseline_is_not_flagged() -> None:
    assert flags_of(facts(reading(0), reading(2)), 5, overridden=False) == ()


def test_a_dose_over_a_hold_is_flagged_hold_overridden() -> None:
    held = facts(reading(0, 170, 104), reading(2, 168, 102))
    assert [f.value for f in flags_of(held, 5, overridden=True)] == ["hold_overridden"]


def test_an_override_with_nothing_standing_flags_nothing() -> None:
    assert flags_of(facts(reading(0), reading(2)), 5, overridden=True) == ()


def test_overriding_a_hold_acknowledges_it_with_the_reason() -> None:
    hold = open_alert(AlertKind.DOSING_HOLD, 2)
    (change,) = hold_overrides([hold], "dr.k", "patient anxious, 2nd reading lower", at(5))
    assert (change.after.state, change.audit.action, change.audit.by, change.audit.note) == (
        AlertState.ACKNOWLEDGED,
        AuditAction.ACKNOWLEDGED,
        "dr.k",
        "dosing hold overridden: patient anxious, 2nd reading lower",
    )


def test_a_running_infusion_is_seen_only_under_an_infusion_protocol() -> None:
    running = facts(reading(0), reading(2), dose(5))
    assert infusion_running(CheckSchedule(IV), running)
    assert not infusion_running(CheckSchedule(IV), facts(reading(0), dose(5, stopped=45)))
    assert not infusion_running(SCHEDULE, running)


def test_finding_6_closing_resolves_every_alert_of_the_session_noting_the_reason() -> None:
    # Before #13 only baseline and stale alerts ended with the session; a rise alert then
    # showed over the next patient in the chair.
    alerts = [
        open_alert(AlertKind.DOSING_HOLD, 1),
        open_alert(AlertKind.ELEVATED_BASELINE, 2, Priority.MEDIUM),
        open_alert(AlertKind.STALE, 3, Priority.LOW),
        open_alert(AlertKind.SEVERE_HYPERTENSION, 4),
    ]
    changes = ended_with_session(alerts, at(90))
    assert [c.after.kind for c in changes] == [a.kind for a in alerts]
    assert all(
        (c.after.state, c.audit.by, c.audit.note) == (AlertState.RESOLVED, SYSTEM, "session closed")
        for c in changes
    )
    (change,) = ended_with_session(alerts[3:], at(90), "dr.k", "sent to ED")
    assert (change.audit.by, change.after.resolution_note) == ("dr.k", "session closed: sent to ED")


def test_overriding_the_gate_acknowledges_standing_severe_and_hold_alerts_only() -> None:
    severe = open_alert(AlertKind.SEVERE_HYPERTENSION, 2)
    hold = open_alert(AlertKind.DOSING_HOLD, 3)
    stale = open_alert(AlertKind.STALE, 4, Priority.LOW)
    changes = gate_overrides([severe, hold, stale], "dr.k", "discussed", at(5))
    assert [(c.after.kind, c.after.state) for c in changes] == [
        (AlertKind.SEVERE_HYPERTENSION, AlertState.ACKNOWLEDGED),
        (AlertKind.DOSING_HOLD, AlertState.ACKNOWLEDGED),
    ]
    assert all("discussed" in (c.audit.note or "") for c in changes)


def test_a_severe_side_effect_raises_a_medium_alert_and_its_check_five_minutes_later() -> None:
    severe = ObservedSideEffect(7, SideEffect.VOMITING, 3, at(20))
    mild = ObservedSideEffect(8, SideEffect.NAUSEA, 2, at(21))
    (change,) = side_effect_alerts(KAP, (), severe, at(20), session_id=SESSION, chair_id=CHAIR)
    assert (change.after.kind, change.after.priority, change.after.condition) == (
        AlertKind.SEVERE_SIDE_EFFECT,
        Priority.MEDIUM,
        "severe_side_effect:s7",
    )
    assert side_effect_alerts(KAP, (), mild, at(21)) == []
    session = replace(facts(reading(0), reading(2), dose(5)), side_effects=(severe, mild))
    checks = {c.key: c for c in SCHEDULE.checks(session, at(22))}
    assert "side_effect:s8" not in checks
    check = checks["side_effect:s7"]
    assert (check.kind, check.window_start, check.window_end) == (
        CheckKind.POST_DOSE,
        at(25),
        at(35),
    )

"""The check schedule of each preset (DESIGN.md "Clinical protocol"), table-driven."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from tests.core.clinic_time import at, dose, error_frame, facts, minutes_of, reading
from vitalsd.domain import (
    CheckKind,
    CheckState,
    DoseFlag,
    Drug,
    Phase,
    ReadingFlag,
    Route,
    SessionFacts,
)
from vitalsd.gates import gate_dose
from vitalsd.protocol import load_protocol
from vitalsd.schedule import (
    SESSION_CLOSED_REASON,
    Check,
    CheckSchedule,
    derive_dose_increase,
    next_check,
)

KAP = CheckSchedule(load_protocol("ketamine-psychotherapy"))
REMS = CheckSchedule(load_protocol("esketamine-rems"))
IV = CheckSchedule(load_protocol("iv-infusion"))

Window = tuple[str, float | None, float | None]


def windows(schedule: CheckSchedule, session: SessionFacts, now: float) -> list[Window]:
    """(kind, opens, closes) in minutes after the session start."""
    return [
        (c.kind.value, minutes_of(c.window_start), minutes_of(c.window_end))
        for c in schedule.checks(session, at(now))
    ]


def check(schedule: CheckSchedule, session: SessionFacts, now: float, key: str) -> Check:
    found = {c.key: c for c in schedule.checks(session, at(now))}
    return found[key]


NORMAL = (122, 78)
ELEVATED = (146, 88)
BORN_AGED_40 = date(1985, 1, 1)
BORN_AGED_64 = date(1960, 6, 1)
BORN_AGED_65 = date(1960, 3, 3)


@pytest.mark.parametrize(
    ("case", "session", "expected"),
    [
        (
            "normal baseline, later in the course, same dose: no post-dose check",
            facts(reading(2, *NORMAL), dose(5), course_session=3),
            [("baseline", 0, 5), ("close", 65, None)],
        ),
        (
            "elevated baseline: confirming reading and the 20-30 minute check",
            facts(reading(2, *ELEVATED), dose(5), course_session=3),
            [("baseline", 0, 5), ("baseline", 3, 5), ("post_dose", 25, 35), ("close", 65, None)],
        ),
        (
            "first session of a course: the 20-30 minute check whatever the baseline",
            facts(reading(2, *NORMAL), dose(5), course_session=1),
            [("baseline", 0, 5), ("post_dose", 25, 35), ("close", 65, None)],
        ),
        (
            "second session of a course: still the start of the course",
            facts(reading(2, *NORMAL), dose(5), course_session=2),
            [("baseline", 0, 5), ("post_dose", 25, 35), ("close", 65, None)],
        ),
        (
            "dose increase: the 20-30 minute check",
            facts(reading(2, *NORMAL), dose(5, increase=True), course_session=7),
            [("baseline", 0, 5), ("post_dose", 25, 35), ("close", 65, None)],
        ),
        (
            "multiple doses: a check after each, the close after the last",
            facts(reading(2, *NORMAL), dose(5), dose(40), course_session=1),
            [
                ("baseline", 0, 5),
                ("post_dose", 25, 35),
                ("post_dose", 60, 70),
                ("close", 100, None),
            ],
        ),
        (
            "no dose yet: the baseline window is open-ended, the close check is open",
            facts(course_session=1),
            [("baseline", 0, None), ("close", 0, None)],
        ),
        (
            "146/88 at 65: below the 150 systolic of older patients, not elevated",
            facts(reading(2, *ELEVATED), dose(5), course_session=3, born=BORN_AGED_65),
            [("baseline", 0, 5), ("close", 65, None)],
        ),
        (
            "146/88 at 64: elevated",
            facts(reading(2, *ELEVATED), dose(5), course_session=3, born=BORN_AGED_64),
            [("baseline", 0, 5), ("baseline", 3, 5), ("post_dose", 25, 35), ("close", 65, None)],
        ),
        (
            "baseline confirmed lower: mean of 150/92 and 126/80 is 138/86, not elevated",
            facts(reading(1, 150, 92), reading(4, 126, 80), dose(6), course_session=3),
            [("baseline", 0, 6), ("baseline", 2, 6), ("close", 66, None)],
        ),
    ],
)
def test_ketamine_psychotherapy_checks(
    case: str, session: SessionFacts, expected: list[Window]
) -> None:
    assert windows(KAP, session, now=10) == expected, case


@pytest.mark.parametrize(
    ("case", "session", "expected"),
    [
        (
            "every session, normal baseline: about 40 minutes after, 2 hours observed",
            facts(
                reading(2, *NORMAL),
                dose(5, amount_mg=56, drug=Drug.ESKETAMINE, route=Route.INTRANASAL),
                course_session=9,
            ),
            [("baseline", 0, 5), ("post_dose", 40, 50), ("close", 125, None)],
        ),
        (
            "elevated baseline: confirming reading as well",
            facts(reading(2, *ELEVATED), dose(5), course_session=9),
            [("baseline", 0, 5), ("baseline", 3, 5), ("post_dose", 40, 50), ("close", 125, None)],
        ),
    ],
)
def test_esketamine_rems_checks(case: str, session: SessionFacts, expected: list[Window]) -> None:
    assert windows(REMS, session, now=10) == expected, case


@pytest.mark.parametrize(
    ("case", "session", "now", "expected"),
    [
        (
            "stopped infusion 10-50: four 10-minute checks, four 15-minute checks, close",
            facts(reading(2), dose(10, stopped=50, route=Route.IV)),
            120,
            [
                ("baseline", 0, 10),
                ("infusion", 10, 20),
                ("infusion", 20, 30),
                ("infusion", 30, 40),
                ("infusion", 40, 50),
                ("post_infusion", 50, 65),
                ("post_infusion", 65, 80),
                ("post_infusion", 80, 95),
                ("post_infusion", 95, 110),
                ("close", 110, None),
            ],
        ),
        (
            "running infusion at 35: the intervals begun and the next; close not yet open",
            facts(reading(2), dose(10)),
            35,
            [
                ("baseline", 0, 10),
                ("infusion", 10, 20),
                ("infusion", 20, 30),
                ("infusion", 30, 40),
                ("infusion", 40, 50),
                ("close", None, None),
            ],
        ),
        (
            "stopped mid-interval at 45: the whole intervals, then post-infusion from the stop",
            facts(reading(2), dose(10, stopped=45)),
            60,
            [
                ("baseline", 0, 10),
                ("infusion", 10, 20),
                ("infusion", 20, 30),
                ("infusion", 30, 40),
                ("post_infusion", 45, 60),
                ("post_infusion", 60, 75),
                ("post_infusion", 75, 90),
                ("post_infusion", 90, 105),
                ("close", 105, None),
            ],
        ),
    ],
)
def test_iv_infusion_checks(
    case: str, session: SessionFacts, now: float, expected: list[Window]
) -> None:
    assert windows(IV, session, now) == expected, case


ELEVATED_SESSION_READINGS = (reading(2, *ELEVATED), reading(4, *ELEVATED))


@pytest.mark.parametrize(
    ("now", "post_dose_reading_at", "state"),
    [
        (24, None, CheckState.PENDING),
        (25, None, CheckState.DUE),
        (34.9, None, CheckState.DUE),
        # #13 low: a reading at the window's last instant still counts, so not overdue yet.
        (35, None, CheckState.DUE),
        (35.01, None, CheckState.OVERDUE),
        (60, None, CheckState.OVERDUE),
        (60, 25, CheckState.SATISFIED),
        (60, 35, CheckState.SATISFIED),
        (60, 24.9, CheckState.OVERDUE),
        (60, 35.1, CheckState.OVERDUE),
    ],
)
def test_post_dose_check_state_over_time_after_elevated_baseline(
    now: float, post_dose_reading_at: float | None, state: CheckState
) -> None:
    later = () if post_dose_reading_at is None else (reading(post_dose_reading_at),)
    session = facts(*ELEVATED_SESSION_READINGS, dose(5), *later, course_session=3)
    assert check(KAP, session, now, f"post_dose:d{session.doses[0].id}").state is state


def test_error_frame_in_the_window_does_not_satisfy_a_check() -> None:
    session = facts(reading(2), dose(5), error_frame(30), course_session=1)
    assert check(KAP, session, 40, f"post_dose:d{session.doses[0].id}").state is CheckState.OVERDUE


def test_flagged_reading_in_the_window_satisfies_a_check() -> None:
    moved = reading(30, flags=frozenset({ReadingFlag.BODY_MOVEMENT}))
    session = facts(reading(2), dose(5), moved, course_session=1)
    assert check(KAP, session, 40, f"post_dose:d{session.doses[0].id}").state is (
        CheckState.SATISFIED
    )


def test_late_delivered_reading_measured_in_the_window_turns_overdue_into_satisfied() -> None:
    before = facts(reading(2), dose(5), course_session=1)
    key = f"post_dose:d{before.doses[0].id}"
    assert check(KAP, before, 50, key).state is CheckState.OVERDUE
    after = facts(*before.readings, *before.doses, reading(28), course_session=1)
    assert check(KAP, after, 50, key).state is CheckState.SATISFIED


def test_dose_without_baseline_makes_the_baseline_check_overdue_and_is_flagged() -> None:
    session = facts(dose(3), course_session=3)
    assert check(KAP, session, 4, "baseline").state is CheckState.OVERDUE
    # The flag is the dosing gate's (vitalsd/gates.py), decided before the dose is stored.
    assert DoseFlag.NO_BASELINE in gate_dose(facts(), KAP, (), at(3), overridden=False).flags


def test_dose_after_a_reading_is_not_flagged() -> None:
    decision = gate_dose(facts(reading(2)), KAP, (), at(3), overridden=False)
    assert DoseFlag.NO_BASELINE not in decision.flags


def test_baseline_check_is_due_from_session_start_until_the_dose() -> None:
    assert check(KAP, facts(), 0, "baseline").state is CheckState.DUE


def test_waived_check_is_waived_with_its_reason() -> None:
    session = facts(reading(2), dose(5), course_session=1)
    key = f"post_dose:d{session.doses[0].id}"
    waived = facts(
        *session.readings, *session.doses, course_session=1, waivers=((key, "patient asleep"),)
    )
    found = check(KAP, waived, 40, key)
    assert (found.state, found.waiver_reason) == (CheckState.WAIVED, "patient asleep")


def test_closing_a_session_waives_checks_whose_window_had_not_closed() -> None:
    session = facts(reading(2), dose(5), course_session=1, closed=28)
    found = check(KAP, session, 90, f"post_dose:d{session.doses[0].id}")
    assert (found.state, found.waiver_reason) == (CheckState.WAIVED, SESSION_CLOSED_REASON)


def test_close_check_is_satisfied_by_a_reading_after_it_opens() -> None:
    session = facts(reading(2), dose(5), reading(70), course_session=4)
    assert check(KAP, session, 75, "close").state is CheckState.SATISFIED


def test_close_check_is_pending_until_an_hour_after_the_last_dose() -> None:
    session = facts(reading(2), dose(5), course_session=4)
    assert check(KAP, session, 64, "close").state is CheckState.PENDING
    assert check(KAP, session, 65, "close").state is CheckState.DUE


@pytest.mark.parametrize(
    ("now", "reading_at", "state"),
    [
        (15, None, CheckState.DUE),
        (20, None, CheckState.DUE),
        (20.01, None, CheckState.OVERDUE),
        (20, 19, CheckState.SATISFIED),
        (30, 20, CheckState.SATISFIED),
        # #13 low: a reading at the dose time is the baseline, not the first infusion check.
        (30, 10, CheckState.OVERDUE),
    ],
)
def test_infusion_interval_due_while_open_overdue_after(
    now: float, reading_at: float | None, state: CheckState
) -> None:
    extra = () if reading_at is None else (reading(reading_at),)
    session = facts(reading(2), dose(10), *extra)
    assert check(IV, session, now, f"infusion:d{session.doses[0].id}:1").state is state


@pytest.mark.parametrize(
    ("session", "now", "phase"),
    [
        (facts(), 1, Phase.CHECKED_IN),
        (facts(error_frame(1)), 2, Phase.CHECKED_IN),
        (facts(reading(1)), 2, Phase.BASELINE),
        (facts(reading(1), dose(5), course_session=1), 20, Phase.DOSED),
        (facts(reading(1), dose(5), course_session=1), 35, Phase.OBSERVATION),
        (facts(reading(1), dose(5), closed=90), 100, Phase.CLOSED),
    ],
)
def test_session_phase(session: SessionFacts, now: float, phase: Phase) -> None:
    assert KAP.phase(session, at(now)) is phase


def test_infusion_session_is_dosed_while_running_and_observed_after_the_stop() -> None:
    running = facts(reading(1), dose(5))
    stopped = facts(reading(1), dose(5, stopped=45))
    assert (IV.phase(running, at(300)), IV.phase(stopped, at(46))) == (
        Phase.DOSED,
        Phase.OBSERVATION,
    )


@pytest.mark.parametrize(
    ("session", "now", "next_edge"),
    [
        (facts(reading(2, *ELEVATED), reading(4, *ELEVATED), dose(5), course_session=3), 10, 25),
        (facts(reading(2, *ELEVATED), reading(4, *ELEVATED), dose(5), course_session=3), 25, 35),
        (facts(reading(2), dose(5), reading(30), course_session=1), 31, 35),
        (facts(reading(2), dose(5), reading(30), course_session=1), 35, 65),
        # The close check's reading stops counting 15 minutes on (DESIGN.md "Closing").
        (facts(reading(2), dose(5), reading(30), reading(70), course_session=1), 71, 85),
    ],
)
def test_next_change_is_the_next_window_edge_or_phase_change(
    session: SessionFacts, now: float, next_edge: float | None
) -> None:
    edge = minutes_of(KAP.next_change(session, at(now)))
    assert edge == (None if next_edge is None else pytest.approx(next_edge, abs=1e-6))


def test_next_change_of_a_running_infusion_is_the_next_interval() -> None:
    session = facts(reading(2), dose(10), reading(15))
    assert minutes_of(IV.next_change(session, at(16))) == 20


def test_next_change_of_a_running_infusion_wakes_for_a_window_satisfied_ahead_of_time() -> None:
    # A reading stamped ahead of now (a fast cuff clock) satisfies the pending window;
    # the loop must still wake when the infusion's next window opens (found by hypothesis).
    session = facts(reading(15), reading(25), dose(1))
    assert minutes_of(IV.next_change(session, at(12))) == 21


def test_one_reading_satisfies_one_of_back_to_back_infusion_checks() -> None:
    """#13 low: IV readings at +10 and +30 satisfied all four 10-minute checks."""
    session = facts(reading(0), dose(0, stopped=40), reading(10), reading(30))
    infusion = [c for c in IV.checks(session, at(45)) if c.kind is CheckKind.INFUSION]
    assert [c.state for c in infusion] == [
        CheckState.SATISFIED,
        CheckState.OVERDUE,
        CheckState.SATISFIED,
        CheckState.OVERDUE,
    ]


def test_closed_session_never_changes_by_time() -> None:
    assert KAP.next_change(facts(reading(1), closed=3), at(4)) is None


def test_next_check_counts_down_to_the_due_check_closing_first() -> None:
    session = facts(reading(2), dose(5), course_session=1)
    found = next_check(KAP.checks(session, at(26)))
    assert found is not None and found.kind is CheckKind.POST_DOSE


@pytest.mark.parametrize(
    ("previous", "so_far", "amount", "increase"),
    [
        (None, 0, 56, False),
        (56, 0, 56, False),
        (56, 0, 84, True),
        (50, 30, 20, False),
        (50, 30, 21, True),
    ],
)
def test_dose_increase_is_derived_from_the_previous_session_total(
    previous: float | None, so_far: float, amount: float, increase: bool
) -> None:
    assert derive_dose_increase(previous, so_far, amount) is increase


REMS_SESSION = facts(reading(2), dose(5), course_session=9)
IV_SESSION = facts(reading(2), dose(10, stopped=50))


@pytest.mark.parametrize(
    ("schedule", "session", "kind", "now", "state"),
    [
        (REMS, REMS_SESSION, CheckKind.POST_DOSE, 39.9, CheckState.PENDING),
        (REMS, REMS_SESSION, CheckKind.POST_DOSE, 40, CheckState.DUE),
        (REMS, REMS_SESSION, CheckKind.POST_DOSE, 49.9, CheckState.DUE),
        (REMS, REMS_SESSION, CheckKind.POST_DOSE, 50, CheckState.DUE),
        (REMS, REMS_SESSION, CheckKind.POST_DOSE, 50.01, CheckState.OVERDUE),
        (REMS, REMS_SESSION, CheckKind.CLOSE, 124.9, CheckState.PENDING),
        (REMS, REMS_SESSION, CheckKind.CLOSE, 125, CheckState.DUE),
        (IV, IV_SESSION, CheckKind.POST_INFUSION, 49.9, CheckState.PENDING),
        (IV, IV_SESSION, CheckKind.POST_INFUSION, 50, CheckState.DUE),
        (IV, IV_SESSION, CheckKind.POST_INFUSION, 65, CheckState.DUE),
        (IV, IV_SESSION, CheckKind.POST_INFUSION, 65.01, CheckState.OVERDUE),
        (IV, IV_SESSION, CheckKind.CLOSE, 109.9, CheckState.PENDING),
        (IV, IV_SESSION, CheckKind.CLOSE, 110, CheckState.DUE),
    ],
)
def test_first_check_of_a_kind_becomes_due_then_overdue(
    schedule: CheckSchedule, session: SessionFacts, kind: CheckKind, now: float, state: CheckState
) -> None:
    first = next(c for c in schedule.checks(session, at(now)) if c.kind is kind)
    assert first.state is state


def test_low_finding_the_age_rule_uses_the_local_date_of_the_session_start() -> None:
    """Issue #13, low finding: a 19:30 New York session the evening before a 65th
    birthday (already the birthday in UTC) is at 64."""
    evening = datetime(2026, 1, 15, 0, 30, tzinfo=UTC)
    schedule = CheckSchedule(load_protocol("iv-infusion"))
    born = date(1961, 1, 15)
    local = SessionFacts(evening, date_of_birth=born, zone=ZoneInfo("America/New_York"))
    assert schedule.age_at_start(local) == 64
    assert schedule.age_at_start(SessionFacts(evening, date_of_birth=born)) == 65

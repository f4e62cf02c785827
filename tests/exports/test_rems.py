"""REMS patient monitoring form data (issue #8, "REMS form data"), including sessions with
missing and late checks. The `esketamine-rems` preset: post-dose window 35-45 minutes
after dosing, close-of-session check from 120 minutes after the last dose."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.exports.clinic_records import (
    START,
    esketamine_dose,
    failed_reading,
    minutes,
    reading,
    session,
)
from vitalsd.exports.record import DoseRecord
from vitalsd.exports.rems import NotARemsSession, Timing, rems_form

LATER = START + timedelta(hours=6)
DOSE = (esketamine_dose(1, 0),)


def test_on_time_session_fills_every_field() -> None:
    record = session(
        (reading(1, -5, 128, 84), reading(2, 40, 135, 85), reading(3, 125, 124, 79)),
        doses=DOSE,
        closed_at_minute=130,
    )
    form = rems_form(record, now=LATER)
    assert (form.bp_before_dosing.reading_id, form.bp_before_dosing.timing) == (1, Timing.ON_TIME)
    assert (form.bp_post_dose.reading_id, form.bp_post_dose.timing) == (2, Timing.ON_TIME)
    assert (form.bp_before_completion.reading_id, form.bp_before_completion.timing) == (
        3,
        Timing.ON_TIME,
    )
    assert form.vital_signs_acceptable_before_dosing is True
    assert form.vital_signs_acceptable_at_completion is True
    assert form.total_monitoring_minutes == 130
    assert form.minimum_monitoring_met is True
    assert form.problems == ()


def test_form_blood_pressures_carry_the_stored_values() -> None:
    record = session((reading(1, -5, 128.0, 84.0),), doses=DOSE, closed_at_minute=130)
    bp = rems_form(record, now=LATER).bp_before_dosing
    assert (bp.systolic, bp.diastolic, bp.measured_at) == (128.0, 84.0, minutes(-5))
    assert bp.shown == "128/84 mmHg"


def test_post_dose_reading_is_the_one_closest_to_40_minutes() -> None:
    record = session(
        (reading(1, -5), reading(2, 36), reading(3, 41), reading(4, 44.5), reading(5, 125)),
        doses=DOSE,
        closed_at_minute=130,
    )
    assert rems_form(record, now=LATER).bp_post_dose.reading_id == 3


def test_missing_post_dose_check_is_reported_missing() -> None:
    record = session((reading(1, -5), reading(2, 125)), doses=DOSE, closed_at_minute=130)
    form = rems_form(record, now=LATER)
    assert form.bp_post_dose.timing is Timing.MISSING
    assert form.bp_post_dose.systolic is None
    assert "no blood pressure about 40 minutes after the first dose" in form.problems


def test_late_post_dose_check_is_used_and_marked_late() -> None:
    record = session(
        (reading(1, -5), reading(2, 52, 138, 86), reading(3, 125)),
        doses=DOSE,
        closed_at_minute=130,
    )
    form = rems_form(record, now=LATER)
    assert (form.bp_post_dose.reading_id, form.bp_post_dose.timing) == (2, Timing.LATE)
    assert form.bp_post_dose.minutes_after_first_dose == 52
    assert any("late" in problem for problem in form.problems)


def test_early_reading_before_the_window_is_not_the_40_minute_check() -> None:
    record = session(
        (reading(1, -5), reading(2, 30), reading(3, 125)), doses=DOSE, closed_at_minute=130
    )
    assert rems_form(record, now=LATER).bp_post_dose.timing is Timing.MISSING


def test_reading_in_the_close_window_is_no_late_40_minute_check() -> None:
    record = session(
        (reading(1, -5), reading(2, 121), reading(3, 125)), doses=DOSE, closed_at_minute=130
    )
    form = rems_form(record, now=LATER)
    assert form.bp_post_dose.timing is Timing.MISSING
    assert form.bp_before_completion.reading_id == 3


def test_missing_completion_check_is_reported_missing() -> None:
    record = session((reading(1, -5), reading(2, 40)), doses=DOSE, closed_at_minute=125)
    form = rems_form(record, now=LATER)
    assert form.bp_before_completion.timing is Timing.MISSING
    assert form.vital_signs_acceptable_at_completion is None
    assert "no blood pressure before the session was completed" in form.problems


def test_completion_reading_taken_before_the_close_window_is_marked_early() -> None:
    record = session(
        (reading(1, -5), reading(2, 40), reading(3, 100, 126, 80)),
        doses=DOSE,
        closed_at_minute=125,
    )
    form = rems_form(record, now=LATER)
    assert (form.bp_before_completion.reading_id, form.bp_before_completion.timing) == (
        3,
        Timing.EARLY,
    )
    assert form.vital_signs_acceptable_at_completion is True


def test_completion_is_the_last_reading_before_the_close() -> None:
    record = session(
        (reading(1, -5), reading(2, 40), reading(3, 121), reading(4, 128), reading(5, 140)),
        doses=DOSE,
        closed_at_minute=130,
    )
    assert rems_form(record, now=LATER).bp_before_completion.reading_id == 4


def test_missing_pre_dose_reading_leaves_acceptability_unknown() -> None:
    record = session((reading(1, 40), reading(2, 125)), doses=DOSE, closed_at_minute=130)
    form = rems_form(record, now=LATER)
    assert form.bp_before_dosing.timing is Timing.MISSING
    assert form.vital_signs_acceptable_before_dosing is None
    assert "no blood pressure before the first dose" in form.problems


def test_hold_range_blood_pressure_before_dosing_is_not_acceptable() -> None:
    record = session((reading(1, -5, 162, 95),), doses=DOSE, closed_at_minute=130)
    assert rems_form(record, now=LATER).vital_signs_acceptable_before_dosing is False


def test_elevated_but_not_hold_range_blood_pressure_before_dosing_is_acceptable() -> None:
    record = session((reading(1, -5, 145, 92),), doses=DOSE, closed_at_minute=130)
    assert rems_form(record, now=LATER).vital_signs_acceptable_before_dosing is True


def test_pulse_out_of_range_before_dosing_is_not_acceptable() -> None:
    record = session((reading(1, -5, 120, 80, pulse=130),), doses=DOSE, closed_at_minute=130)
    assert rems_form(record, now=LATER).vital_signs_acceptable_before_dosing is False


def test_rise_over_baseline_at_completion_is_not_acceptable() -> None:
    # Diastolic 70 -> 96: a rise of 26 (>= 25), below the 100 hold limit.
    record = session(
        (reading(1, -5, 120, 70), reading(2, 40), reading(3, 125, 130, 96)),
        doses=DOSE,
        closed_at_minute=130,
    )
    assert rems_form(record, now=LATER).vital_signs_acceptable_at_completion is False


def test_pre_dose_reading_flagged_for_remeasure_gives_way_to_a_clean_one() -> None:
    record = session(
        (reading(1, -10, 128, 84), reading(2, -2, 150, 95, flags=("body_movement",))),
        doses=DOSE,
        closed_at_minute=130,
    )
    assert rems_form(record, now=LATER).bp_before_dosing.reading_id == 1


def test_failed_measurements_are_never_form_values() -> None:
    record = session(
        (reading(1, -5), failed_reading(2, -1), failed_reading(3, 40), reading(4, 125)),
        doses=DOSE,
        closed_at_minute=130,
    )
    form = rems_form(record, now=LATER)
    assert form.bp_before_dosing.reading_id == 1
    assert form.bp_post_dose.timing is Timing.MISSING


def test_monitoring_minutes_count_from_the_first_device_and_round_down() -> None:
    record = session(
        (reading(1, -5),),
        doses=(esketamine_dose(1, 0, 28), esketamine_dose(2, 5, 28)),
        closed_at_minute=129.9,
    )
    form = rems_form(record, now=LATER)
    assert form.total_monitoring_minutes == 129
    assert form.esketamine_mg == 56


def test_monitoring_under_two_hours_is_flagged() -> None:
    record = session((reading(1, -5),), doses=DOSE, closed_at_minute=119.5)
    form = rems_form(record, now=LATER)
    assert form.minimum_monitoring_met is False
    assert any("less than the REMS minimum of 120 min" in p for p in form.problems)


def test_open_session_shows_what_is_still_to_come_as_pending() -> None:
    record = session((reading(1, -5),), doses=DOSE)
    form = rems_form(record, now=minutes(20))
    assert form.bp_post_dose.timing is Timing.PENDING
    assert form.bp_before_completion.timing is Timing.PENDING
    assert form.total_monitoring_minutes is None
    assert form.minimum_monitoring_met is None


def test_open_session_past_the_post_dose_window_reports_it_missing() -> None:
    record = session((reading(1, -5),), doses=DOSE)
    assert rems_form(record, now=minutes(50)).bp_post_dose.timing is Timing.MISSING


def test_session_without_a_dose_has_no_form_values_yet() -> None:
    form = rems_form(session((reading(1, -5),)), now=minutes(10))
    assert form.first_administration_at is None
    assert form.bp_before_dosing.timing is Timing.PENDING
    assert form.problems == ("no dose recorded",)


def test_ketamine_session_has_no_rems_form() -> None:
    ketamine = DoseRecord(1, "ketamine", 50.0, "IM", START)
    record = session((reading(1, -5),), doses=(ketamine,), protocol="ketamine-psychotherapy")
    with pytest.raises(NotARemsSession, match="esketamine"):
        rems_form(record, now=LATER)


def test_esketamine_dose_on_another_protocol_still_has_a_form() -> None:
    record = session(
        (reading(1, -5), reading(2, 40), reading(3, 125)),
        doses=DOSE,
        protocol="ketamine-psychotherapy",
        closed_at_minute=130,
    )
    form = rems_form(record, now=LATER)
    assert form.bp_post_dose.reading_id == 2


def test_open_session_shows_a_completion_reading_so_far_as_pending() -> None:
    record = session((reading(1, -5), reading(2, 40), reading(3, 122)), doses=DOSE)
    bp = rems_form(record, now=minutes(125)).bp_before_completion
    assert (bp.reading_id, bp.timing) == (3, Timing.PENDING)

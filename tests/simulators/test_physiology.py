"""The patient model alone: pure, seeded, many patients, no Bluetooth."""

from __future__ import annotations

import functools
import itertools
import math
import random
import statistics
from datetime import UTC, datetime, timedelta

import pytest

from devices.bps import MeasurementStatus
from simulators.physiology import (
    CUFF_PRESSURE_INTERVAL,
    MeasurementProblem,
    Patient,
    Profile,
    cuff_pressure_trace,
)

DOSE = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
PATIENTS = 1000


@functools.cache
def many_patients(profile: Profile = Profile.NORMOTENSIVE) -> list[Patient]:
    rng = random.Random(20250304)
    return [Patient.draw(profile, rng) for _ in range(PATIENTS)]


@functools.cache
def peak_rise(patient: Patient) -> tuple[timedelta, float, float]:
    """(time of the systolic peak after the dose, systolic rise, diastolic rise) on a
    one-minute grid over two hours."""
    best = max(
        range(0, 121), key=lambda m: patient.expected(DOSE + timedelta(minutes=m), [DOSE]).systolic
    )
    vitals = patient.expected(DOSE + timedelta(minutes=best), [DOSE])
    return (
        timedelta(minutes=best),
        vitals.systolic - patient.baseline_systolic,
        vitals.diastolic - patient.baseline_diastolic,
    )


def test_dose_response_peaks_30_to_40_minutes_after_the_dose_for_every_patient() -> None:
    peaks = [peak_rise(p)[0] for p in many_patients()]
    assert min(peaks) >= timedelta(minutes=30)
    assert max(peaks) <= timedelta(minutes=40)


def test_mean_peak_rise_is_8_to_16_systolic_and_5_to_11_diastolic() -> None:
    rises = [peak_rise(p) for p in many_patients()]
    assert 8 <= statistics.fmean(r[1] for r in rises) <= 16
    assert 5 <= statistics.fmean(r[2] for r in rises) <= 11


def test_a_minority_of_patients_rise_40_systolic_or_more() -> None:
    share = sum(peak_rise(p)[1] >= 40 for p in many_patients()) / PATIENTS
    assert 0.05 <= share <= 0.2


def test_pressures_are_back_to_baseline_120_minutes_after_the_dose() -> None:
    for patient in many_patients()[:200]:
        later = patient.expected(DOSE + timedelta(minutes=120), [DOSE])
        assert later.systolic == patient.baseline_systolic
        assert later.diastolic == patient.baseline_diastolic


def test_pressures_are_still_raised_before_90_minutes_after_the_dose() -> None:
    for patient in many_patients()[:200]:
        assert patient.expected(DOSE + timedelta(minutes=85), [DOSE]).systolic > (
            patient.baseline_systolic
        )


def test_nothing_changes_before_the_dose() -> None:
    patient = many_patients()[0]
    before = patient.expected(DOSE - timedelta(minutes=1), [DOSE])
    assert (before.systolic, before.diastolic) == (
        patient.baseline_systolic,
        patient.baseline_diastolic,
    )


def test_a_high_responder_rises_40_systolic_or_more() -> None:
    patient = Patient.draw(Profile.NORMOTENSIVE, random.Random(1), high_responder=True)
    assert peak_rise(patient)[1] >= 40


def test_reading_to_reading_variation_is_a_few_mmhg() -> None:
    patient = many_patients()[0]
    rng = random.Random(7)
    systolic = [patient.measure(DOSE, rng).systolic for _ in range(500)]
    assert 1.5 <= statistics.stdev(systolic) <= 5
    assert abs(statistics.fmean(systolic) - patient.baseline_systolic) < 1


@pytest.mark.parametrize(
    ("profile", "low", "high"),
    [
        (Profile.NORMOTENSIVE, (0, 0), (140, 90)),
        (Profile.ELEVATED, (140, 90), (160, 100)),
        (Profile.HYPERTENSIVE, (160, 100), (180, 110)),
    ],
)
def test_profile_baseline_readings_fall_between_the_design_thresholds(
    profile: Profile, low: tuple[int, int], high: tuple[int, int]
) -> None:
    rng = random.Random(3)
    readings = [p.measure(DOSE, rng) for p in many_patients(profile)[:300]]
    share_inside = sum(
        low[0] <= r.systolic < high[0] and low[1] <= r.diastolic < high[1] for r in readings
    ) / len(readings)
    assert share_inside >= 0.95


def test_hypotensive_baseline_readings_are_below_90_over_60() -> None:
    rng = random.Random(3)
    readings = [p.measure(DOSE, rng) for p in many_patients(Profile.HYPOTENSIVE)[:300]]
    assert all(r.systolic < 90 and r.diastolic < 60 for r in readings)


def test_the_same_seed_gives_the_same_patient_and_readings() -> None:
    first = Patient.draw("elevated", random.Random(42))
    second = Patient.draw("elevated", random.Random(42))
    assert first == second
    assert first.measure(DOSE, random.Random(5)) == second.measure(DOSE, random.Random(5))


def test_a_reading_reports_whole_mmhg_and_a_consistent_mean_arterial_pressure() -> None:
    reading = many_patients()[0].measure(DOSE, random.Random(9))
    assert reading.systolic.is_integer() and reading.diastolic.is_integer()
    assert reading.diastolic < reading.mean_arterial_pressure < reading.systolic
    assert reading.status == MeasurementStatus(0)


def test_an_error_frame_reading_is_all_nan_with_no_status_bits() -> None:
    reading = many_patients()[0].measure(DOSE, random.Random(9), problem="error-frame")
    assert all(
        math.isnan(v)
        for v in (
            reading.systolic,
            reading.diastolic,
            reading.mean_arterial_pressure,
            reading.pulse_rate,
        )
    )
    assert reading.status == MeasurementStatus(0)
    assert reading.is_error


@pytest.mark.parametrize(
    ("problem", "status"),
    [
        (MeasurementProblem.BODY_MOVEMENT, MeasurementStatus.BODY_MOVEMENT_DETECTED),
        (MeasurementProblem.LOOSE_CUFF, MeasurementStatus.CUFF_TOO_LOOSE),
        (MeasurementProblem.IMPROPER_POSITION, MeasurementStatus.IMPROPER_MEASUREMENT_POSITION),
        (MeasurementProblem.IRREGULAR_PULSE, MeasurementStatus.IRREGULAR_PULSE_DETECTED),
    ],
)
def test_a_measurement_problem_sets_its_status_bit(
    problem: MeasurementProblem, status: MeasurementStatus
) -> None:
    reading = many_patients()[0].measure(DOSE, random.Random(9), problem=problem)
    assert reading.status == status
    assert not reading.is_error


def test_an_unknown_problem_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown measurement problem 'hiccups'"):
        many_patients()[0].measure(DOSE, random.Random(9), problem="hiccups")


def test_an_unknown_profile_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown patient profile 'athletic'"):
        Patient.draw("athletic", random.Random(1))


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        many_patients()[0].expected(datetime(2025, 3, 4, 9, 0))


def test_the_cuff_inflates_above_systolic_then_deflates_below_diastolic() -> None:
    reading = many_patients()[0].measure(DOSE, random.Random(9))
    trace = cuff_pressure_trace(reading)
    pressures = [s.pressure for s in trace]
    top = pressures.index(max(pressures))
    assert max(pressures) > reading.systolic
    assert pressures[:top] == sorted(pressures[:top])
    assert pressures[top:] == sorted(pressures[top:], reverse=True)
    assert pressures[-1] < reading.diastolic


def test_cuff_pressure_is_sampled_once_a_second_for_about_half_a_minute() -> None:
    trace = cuff_pressure_trace(many_patients()[0].measure(DOSE, random.Random(9)))
    gaps = {b.after - a.after for a, b in itertools.pairwise(trace)}
    assert gaps == {CUFF_PRESSURE_INTERVAL}
    assert timedelta(seconds=20) <= trace[-1].after <= timedelta(seconds=60)

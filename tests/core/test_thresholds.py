"""Thresholds at every boundary (DESIGN.md "Thresholds"), flags, error frames, manual."""

from __future__ import annotations

import pytest

from tests.core.clinic_time import at, error_frame, reading
from vitalsd.domain import AlertKind, Priority, Reading, ReadingFlag, ReadingSource
from vitalsd.thresholds import (
    Baseline,
    BloodPressureCategory,
    Thresholds,
    baseline_of,
    blood_pressure_category,
)

RULES = Thresholds()
NORMAL_BASELINE = Baseline(120, 80, (1, 2))
MOVED = frozenset({ReadingFlag.BODY_MOVEMENT})


def kinds_of(
    systolic: float,
    diastolic: float,
    *,
    post_dose: bool = True,
    pulse: float = 72,
    flags: frozenset[ReadingFlag] = frozenset(),
) -> set[AlertKind]:
    found = RULES.assess(
        reading(40, systolic, diastolic, pulse=pulse, flags=flags), NORMAL_BASELINE, post_dose
    )
    return {f.kind for f in found.findings}


@pytest.mark.parametrize(
    ("systolic", "diastolic", "category"),
    [
        (119, 79, BloodPressureCategory.NORMAL),
        (120, 79, BloodPressureCategory.ELEVATED),
        (129, 79, BloodPressureCategory.ELEVATED),
        (130, 79, BloodPressureCategory.STAGE_1),
        (119, 80, BloodPressureCategory.STAGE_1),
        (139, 89, BloodPressureCategory.STAGE_1),
        (140, 70, BloodPressureCategory.STAGE_2),
        (110, 90, BloodPressureCategory.STAGE_2),
        (179, 109, BloodPressureCategory.STAGE_2),
        (181, 100, BloodPressureCategory.SEVERE),
        (150, 121, BloodPressureCategory.SEVERE),
        # #13 low: the category agrees with the severe-hypertension alert at 180 / 110.
        (180, 100, BloodPressureCategory.SEVERE),
        (150, 110, BloodPressureCategory.SEVERE),
        # #13 finding 14: below 90/60 is `low`, never `normal`.
        (77, 48, BloodPressureCategory.LOW),
        (84, 51, BloodPressureCategory.LOW),
        (89, 70, BloodPressureCategory.LOW),
        (110, 59, BloodPressureCategory.LOW),
        (90, 60, BloodPressureCategory.NORMAL),
        # Judged on the whole-mmHg value shown, rounded half up.
        (119.5, 79, BloodPressureCategory.ELEVATED),
        (119.49, 79, BloodPressureCategory.NORMAL),
        (89.5, 59.5, BloodPressureCategory.NORMAL),
    ],
)
def test_acc_aha_category(
    systolic: float, diastolic: float, category: BloodPressureCategory
) -> None:
    assert blood_pressure_category(systolic, diastolic) is category


@pytest.mark.parametrize(
    ("systolic", "diastolic", "age", "kinds"),
    [
        (139, 80, 40, set()),
        (140, 80, 40, {AlertKind.ELEVATED_BASELINE}),
        (130, 89, 40, set()),
        (130, 90, 40, {AlertKind.ELEVATED_BASELINE}),
        (145, 80, 64, {AlertKind.ELEVATED_BASELINE}),
        (145, 80, 65, set()),
        (149, 80, 65, set()),
        (150, 80, 65, {AlertKind.ELEVATED_BASELINE}),
        (145, 90, 65, {AlertKind.ELEVATED_BASELINE}),
        (159, 99, 40, {AlertKind.ELEVATED_BASELINE}),
        (160, 80, 40, {AlertKind.DOSING_HOLD}),
        (120, 100, 40, {AlertKind.DOSING_HOLD}),
        (160, 80, 70, {AlertKind.DOSING_HOLD}),
    ],
)
def test_baseline_alert_boundaries(
    systolic: float, diastolic: float, age: int, kinds: set[AlertKind]
) -> None:
    found = RULES.baseline_findings(Baseline(systolic, diastolic, (1,)), age, False)
    assert {f.kind for f in found} == kinds


def test_dosing_hold_is_high_priority_and_elevated_baseline_low() -> None:
    hold = RULES.baseline_findings(Baseline(165, 90, (1,)), 40, False)
    elevated = RULES.baseline_findings(Baseline(145, 85, (1,)), 40, False)
    assert [f.priority for f in hold + elevated] == [Priority.HIGH, Priority.LOW]


def test_unconfirmed_elevated_baseline_asks_for_a_confirming_reading() -> None:
    (finding,) = RULES.baseline_findings(Baseline(145, 85, (1,)), 40, False)
    assert "confirming reading" in finding.message


@pytest.mark.parametrize(
    ("baseline", "kinds"),
    [
        (Baseline(145, 85, (1,)), {AlertKind.ELEVATED_BASELINE, AlertKind.CONSIDER_DEFERRING}),
        (Baseline(165, 85, (1,)), {AlertKind.DOSING_HOLD, AlertKind.CONSIDER_DEFERRING}),
        (Baseline(125, 85, (1,)), set()),
    ],
)
def test_esketamine_elevated_baseline_raises_consider_deferring(
    baseline: Baseline, kinds: set[AlertKind]
) -> None:
    assert {f.kind for f in RULES.baseline_findings(baseline, 40, True)} == kinds


@pytest.mark.parametrize(
    ("systolic", "diastolic", "severe"),
    [(179, 109, False), (180, 100, True), (150, 110, True), (179, 110, True)],
)
def test_severe_hypertension_boundary(systolic: float, diastolic: float, severe: bool) -> None:
    assert (AlertKind.SEVERE_HYPERTENSION in kinds_of(systolic, diastolic)) is severe


def test_severe_hypertension_is_high_priority_before_a_dose_too() -> None:
    found = RULES.assess(reading(2, 184, 100), None, post_dose=False)
    assert [(f.kind, f.priority) for f in found.findings] == [
        (AlertKind.SEVERE_HYPERTENSION, Priority.HIGH)
    ]


@pytest.mark.parametrize(
    ("systolic", "diastolic", "rise"),
    [(159, 104, False), (160, 80, True), (120, 104, False), (120, 105, True)],
)
def test_rise_over_baseline_boundary_40_systolic_25_diastolic(
    systolic: float, diastolic: float, rise: bool
) -> None:
    assert (AlertKind.RISE_OVER_BASELINE in kinds_of(systolic, diastolic)) is rise


def test_rise_is_judged_only_after_the_dose() -> None:
    assert kinds_of(160, 80, post_dose=False) == set()


def test_severe_reading_does_not_also_raise_rise_over_baseline() -> None:
    assert kinds_of(185, 100) == {AlertKind.SEVERE_HYPERTENSION}


@pytest.mark.parametrize(
    ("systolic", "diastolic", "low"),
    [(90, 60, False), (89, 60, True), (100, 59, True)],
)
def test_hypotension_boundary(systolic: float, diastolic: float, low: bool) -> None:
    assert (AlertKind.HYPOTENSION in kinds_of(systolic, diastolic)) is low


@pytest.mark.parametrize(("pulse", "out"), [(49, True), (50, False), (120, False), (121, True)])
def test_pulse_limits(pulse: float, out: bool) -> None:
    assert (AlertKind.PULSE_OUT_OF_RANGE in kinds_of(122, 78, pulse=pulse)) is out


@pytest.mark.parametrize(
    "flag",
    [ReadingFlag.BODY_MOVEMENT, ReadingFlag.CUFF_TOO_LOOSE, ReadingFlag.IMPROPER_POSITION],
)
def test_quality_flag_asks_for_a_remeasurement(flag: ReadingFlag) -> None:
    found = RULES.assess(reading(40, flags=frozenset({flag})), NORMAL_BASELINE, True)
    assert [(f.kind, f.priority) for f in found.findings] == [(AlertKind.REMEASURE, Priority.LOW)]


def test_flagged_reading_in_severe_range_alerts_at_once_marked_unverified() -> None:
    found = RULES.assess(reading(40, 186, 100, flags=MOVED), NORMAL_BASELINE, True)
    severe = [f for f in found.findings if f.kind is AlertKind.SEVERE_HYPERTENSION]
    assert [(f.priority, f.unverified) for f in severe] == [(Priority.HIGH, True)]


def test_flagged_low_reading_asks_for_a_remeasurement_not_a_hypotension_alert() -> None:
    assert kinds_of(85, 55, flags=MOVED) == {AlertKind.REMEASURE}


def test_flagged_reading_clears_no_condition() -> None:
    assert RULES.assess(reading(40, flags=MOVED), NORMAL_BASELINE, True).clears == frozenset()


def test_irregular_pulse_is_clinical_information_not_a_remeasure() -> None:
    irregular = reading(40, flags=frozenset({ReadingFlag.IRREGULAR_PULSE}))
    assert not irregular.needs_remeasure
    assert RULES.assess(irregular, NORMAL_BASELINE, True).findings == ()


def test_clean_normal_reading_clears_every_reading_condition() -> None:
    assert RULES.assess(reading(40), NORMAL_BASELINE, True).clears == {
        AlertKind.SEVERE_HYPERTENSION,
        AlertKind.RISE_OVER_BASELINE,
        AlertKind.HYPOTENSION,
        AlertKind.PULSE_OUT_OF_RANGE,
        AlertKind.REMEASURE,
    }


def test_reading_without_pulse_leaves_the_pulse_condition_alone() -> None:
    cleared = RULES.assess(reading(40, pulse=None), NORMAL_BASELINE, True).clears
    assert AlertKind.PULSE_OUT_OF_RANGE not in cleared


def test_error_frame_has_no_category_and_raises_nothing() -> None:
    found = RULES.assess(error_frame(40), NORMAL_BASELINE, True)
    assert (found.category, found.findings, found.clears) == (None, (), frozenset())


def test_manual_reading_is_judged_like_a_cuff_reading() -> None:
    manual = reading(40, 182, 95, pulse=None, source=ReadingSource.MANUAL)
    found = RULES.assess(manual, NORMAL_BASELINE, True)
    assert (found.category, [f.kind for f in found.findings]) == (
        BloodPressureCategory.SEVERE,
        [AlertKind.SEVERE_HYPERTENSION],
    )


def test_baseline_is_the_mean_of_the_latest_two_valid_pre_dose_readings() -> None:
    readings = [
        reading(1, 160, 100),
        reading(3, 150, 94),
        reading(5, 140, 86),
        reading(9, 190, 120),
    ]
    found = baseline_of(readings, at(6), 2)
    assert found is not None and (found.systolic, found.diastolic) == (145, 90)


def test_baseline_skips_error_frames_and_prefers_unflagged_readings() -> None:
    readings = [reading(1, 130, 85), reading(2, 170, 105, flags=MOVED), error_frame(3)]
    found = baseline_of(readings, at(6), 2)
    assert found is not None and (found.systolic, found.diastolic, found.confirmed) == (
        130,
        85,
        False,
    )


def test_only_flagged_readings_still_make_a_baseline() -> None:
    found = baseline_of([reading(1, 150, 95, flags=MOVED)], None, 2)
    assert found is not None and found.systolic == 150


def test_no_valid_pre_dose_reading_means_no_baseline() -> None:
    assert baseline_of([error_frame(1), reading(8)], at(5), 2) is None


def kpa(value: float) -> float:
    return value * 7.500617


def test_kpa_reading_shown_as_160_100_is_judged_as_a_dosing_hold() -> None:
    """#13 finding 10: 21.3/13.3 kPa is 159.76/99.76 mmHg, shown 160/100: a hold."""
    baseline = Baseline(kpa(21.3), kpa(13.3), (1, 2))
    kinds = {f.kind for f in RULES.baseline_findings(baseline, 40, consider_deferring=False)}
    assert kinds == {AlertKind.DOSING_HOLD}
    assert "160/100 mmHg" in RULES.baseline_findings(baseline, 40, False)[0].message


def test_kpa_reading_shown_as_173_110_raises_severe_hypertension() -> None:
    """#13 finding 10: 23.0/14.6 kPa shows 173/110 and must raise a severe alert."""
    found = RULES.assess(reading(40, kpa(23.0), kpa(14.6)), NORMAL_BASELINE, post_dose=True)
    assert found.category is BloodPressureCategory.SEVERE
    assert AlertKind.SEVERE_HYPERTENSION in {f.kind for f in found.findings}
    assert "173/110 mmHg" in found.findings[0].message


def test_hypotension_reading_has_category_low() -> None:
    """#13 finding 14: a green "Normal" chip under a "Hypotension" badge."""
    found = RULES.assess(reading(40, 80, 50), NORMAL_BASELINE, post_dose=True)
    assert found.category is BloodPressureCategory.LOW
    assert AlertKind.HYPOTENSION in {f.kind for f in found.findings}


# -- issue #13 finding 13: partial frames (DESIGN.md "Partial frames") -------------------


def incomplete(systolic: float | None, diastolic: float | None, pulse: float = 72) -> Reading:
    return Reading(
        id=1,
        measured_at=at(40),
        systolic=systolic,
        diastolic=diastolic,
        pulse_rate=pulse,
        flags=frozenset({ReadingFlag.INCOMPLETE}),
        valid=False,
    )


@pytest.mark.parametrize(
    ("systolic", "diastolic", "severe"),
    [(179, None, False), (180, None, True), (None, 109, False), (None, 110, True)],
)
def test_finding_13_a_partial_frame_in_the_severe_range_alerts_unverified_at_its_boundary(
    systolic: float | None, diastolic: float | None, severe: bool
) -> None:
    found = RULES.assess(incomplete(systolic, diastolic), NORMAL_BASELINE, True)
    by_kind = {f.kind: f for f in found.findings}
    assert AlertKind.REMEASURE in by_kind
    assert (AlertKind.SEVERE_HYPERTENSION in by_kind) is severe
    if severe:
        assert by_kind[AlertKind.SEVERE_HYPERTENSION].unverified
        assert by_kind[AlertKind.SEVERE_HYPERTENSION].priority is Priority.HIGH
    assert found.category is None and found.clears == frozenset()


def test_finding_13_a_partial_frame_keeps_its_pulse_judged() -> None:
    found = RULES.assess(incomplete(210, None, pulse=135), NORMAL_BASELINE, True)
    assert {f.kind for f in found.findings} == {
        AlertKind.REMEASURE,
        AlertKind.SEVERE_HYPERTENSION,
        AlertKind.PULSE_OUT_OF_RANGE,
    }


@pytest.mark.parametrize(
    ("systolic", "diastolic", "pulse", "limits"),
    [
        (184, 100, 72, {AlertKind.SEVERE_HYPERTENSION: "≥ 180/110 mmHg"}),
        (
            160,
            80,
            72,
            {AlertKind.RISE_OVER_BASELINE: "a rise of 40/25 mmHg over the baseline 120/80 mmHg"},
        ),
        (84, 51, 72, {AlertKind.HYPOTENSION: "< 90/60 mmHg"}),
        (122, 78, 130, {AlertKind.PULSE_OUT_OF_RANGE: "50-120 /min"}),
    ],
)
def test_a_finding_names_the_limit_it_crossed(
    systolic: float, diastolic: float, pulse: float, limits: dict[AlertKind, str]
) -> None:
    """Issue #14/#15: the screen and the phone show the limit crossed, from the rules'
    own numbers (not read back out of the message)."""
    found = RULES.assess(reading(40, systolic, diastolic, pulse=pulse), NORMAL_BASELINE, True)
    assert {f.kind: f.limit for f in found.findings} == limits


def test_a_baseline_finding_names_its_limit() -> None:
    (hold,) = RULES.baseline_findings(Baseline(182, 104, (1, 2)), 40, False)
    assert (hold.kind, hold.limit) == (
        AlertKind.DOSING_HOLD,
        f"≥ {RULES.limits.hold_systolic:g}/{RULES.limits.hold_diastolic:g} mmHg",
    )

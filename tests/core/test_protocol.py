"""Protocol files: the three presets load, a clinic's copy loads, bad files name the key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from vitalsd.protocol import (
    DEFAULT_PRESET,
    PRESETS,
    PostDoseCondition,
    ProtocolError,
    load_protocol,
    parse_protocol,
)

MINIMAL = 'name = "clinic"\n'


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_loads_under_its_own_name(preset: str) -> None:
    assert load_protocol(preset).name == preset


def test_default_preset_is_ketamine_psychotherapy() -> None:
    assert DEFAULT_PRESET == "ketamine-psychotherapy"


def test_ketamine_psychotherapy_post_dose_check_is_20_to_30_minutes_on_three_conditions() -> None:
    rule = load_protocol("ketamine-psychotherapy").post_dose
    assert rule is not None
    assert (rule.opens_after, rule.closes_after) == (timedelta(minutes=20), timedelta(minutes=30))
    assert rule.when == {
        PostDoseCondition.ELEVATED_BASELINE,
        PostDoseCondition.COURSE_START,
        PostDoseCondition.DOSE_INCREASE,
    }


def test_esketamine_rems_checks_every_session_and_observes_two_hours() -> None:
    protocol = load_protocol("esketamine-rems")
    assert protocol.post_dose is not None
    assert protocol.post_dose.when == {PostDoseCondition.ALWAYS}
    assert protocol.close.opens_after_last_dose == timedelta(hours=2)
    assert protocol.baseline.consider_deferring_when_elevated


def test_iv_infusion_checks_every_10_minutes_then_every_15_for_an_hour() -> None:
    protocol = load_protocol("iv-infusion")
    assert protocol.infusion is not None and protocol.post_infusion is not None
    assert protocol.infusion.interval == timedelta(minutes=10)
    assert protocol.post_infusion.interval == timedelta(minutes=15)
    assert protocol.post_infusion.duration == timedelta(hours=1)


def test_clinic_copy_of_a_preset_loads_with_its_edits(tmp_path: Path) -> None:
    text = load_protocol("ketamine-psychotherapy").source_text
    edited = text.replace('name = "ketamine-psychotherapy"', 'name = "our-clinic"').replace(
        "course_start_sessions = 2", "course_start_sessions = 3"
    )
    path = tmp_path / "our-clinic.toml"
    path.write_text(edited)
    protocol = load_protocol(path)
    assert (protocol.name, protocol.course_start_sessions) == ("our-clinic", 3)


def test_minimal_file_gets_clinical_defaults() -> None:
    protocol = parse_protocol(MINIMAL)
    assert protocol.thresholds.hold_systolic == 160
    assert protocol.course_start_sessions == 2


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("title = 'x'\n", "name", "is required"),
        (MINIMAL + "course_start_sesions = 2\n", "course_start_sesions", "not a known setting"),
        (MINIMAL + "course_start_sessions = 'two'\n", "course_start_sessions", "whole number"),
        (MINIMAL + "course_start_sessions = -1\n", "course_start_sessions", "at least 0"),
        (
            MINIMAL + "[post_dose]\nopens_after_minutes = 30\ncloses_after_minutes = 20\n"
            "when = ['always']\n",
            "post_dose.closes_after_minutes",
            "later than opens_after_minutes",
        ),
        (
            MINIMAL + "[post_dose]\nopens_after_minutes = 20\ncloses_after_minutes = 30\n"
            "when = ['sometimes']\n",
            "post_dose.when",
            "unknown condition 'sometimes'",
        ),
        (
            MINIMAL + "[post_dose]\nopens_after_minutes = 20\nwhen = ['always']\n",
            "post_dose.closes_after_minutes",
            "is required",
        ),
        (MINIMAL + "[thresholds]\nhold_systolic = 130\n", "thresholds.hold_systolic", "greater"),
        (MINIMAL + "[thresholds]\npulse_high = 'fast'\n", "thresholds.pulse_high", "a number"),
        (MINIMAL + "[baseline]\nrequired = 'yes'\n", "baseline.required", "true or false"),
        (MINIMAL + "baseline = 3\n", "baseline", "must be a table"),
        (
            MINIMAL + "[post_infusion]\ninterval_minutes = 15\nduration_minutes = 60\n",
            "post_infusion",
            "needs an [infusion] table",
        ),
        ("name = \n", "(file)", "not valid TOML"),
    ],
)
def test_bad_protocol_file_error_names_the_key_and_the_problem(
    text: str, key: str, problem: str
) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_protocol(text, "clinic.toml")
    assert caught.value.key == key
    assert problem in caught.value.problem
    assert f"key '{key}'" in str(caught.value) and "clinic.toml" in str(caught.value)


def test_unknown_preset_name_and_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ProtocolError, match="no preset of that name"):
        load_protocol(str(tmp_path / "absent.toml"))

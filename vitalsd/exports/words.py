"""Words a person reads for the codes the records store (issue #14: "Severe
hypertension", not `severe_hypertension`, on the report, the REMS form and the CSV).

Pure. Machine outputs keep the codes (FHIR codings, the JSON API); only what is printed
or opened in a spreadsheet uses these words. The dashboard's `format.js` holds the same
words for the screen.
"""

from __future__ import annotations

from typing import Final

WORDS: Final[dict[str, str]] = {
    # reading categories
    "low": "Low",
    "normal": "Normal",
    "elevated": "Elevated",
    "stage_1": "Stage 1 hypertension",
    "stage_2": "Stage 2 hypertension",
    "severe": "Severe hypertension",
    # session phases
    "checked_in": "Checked in",
    "baseline": "Baseline",
    "dosed": "Dosed",
    "observation": "Observation",
    "closed": "Closed",
    # alert kinds
    "elevated_baseline": "Elevated baseline",
    "consider_deferring": "Consider deferring",
    "dosing_hold": "Dosing hold",
    "severe_hypertension": "Severe hypertension",
    "rise_over_baseline": "Rise over baseline",
    "hypotension": "Hypotension",
    "pulse_out_of_range": "Pulse out of range",
    "remeasure": "Remeasure",
    "check_overdue": "Check overdue",
    "stale": "No recent reading",
    "severe_side_effect": "Severe side effect",
    "cuff_clock_off": "Cuff clock off",
    "cuff_offline": "Cuff cannot connect",
    "nobody_watching": "Nobody watching",
    "channel_failing": "Notification channel failing",
    # priorities and alert states
    "high": "High",
    "medium": "Medium",
    "active": "Active",
    "acknowledged": "Acknowledged",
    "snoozed": "Snoozed",
    "resolved": "Resolved",
    # check states
    "pending": "Pending",
    "due": "Due",
    "satisfied": "Satisfied",
    "overdue": "Overdue",
    "waived": "Waived",
    # REMS form timings
    "on_time": "On time",
    "late": "Late",
    "early": "Early",
    "missing": "Missing",
    # reading sources, flags, dose flags
    "cuff": "Cuff",
    "manual": "Manual",
    "body_movement": "Body movement",
    "cuff_too_loose": "Cuff too loose",
    "irregular_pulse": "Irregular pulse",
    "pulse_rate_range": "Pulse rate out of the cuff's range",
    "improper_position": "Improper measurement position",
    "no_baseline": "No baseline before the dose",
    "no_recent_bp": "No blood pressure in the 30 minutes before the dose",
    "hold_overridden": "Dosing hold overridden",
}


def word(code: str | None) -> str:
    """The words for `code`; an unknown code reads as its words, capitalised."""
    if code is None or code == "":
        return ""
    known = WORDS.get(code)
    if known is not None:
        return known
    spaced = code.replace("_", " ")
    return spaced[:1].upper() + spaced[1:]


def words(codes: tuple[str, ...] | list[str]) -> str:
    return ", ".join(word(c) for c in codes)

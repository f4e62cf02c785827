"""What the esketamine REMS patient monitoring form asks for, computed from a session.

The SPRAVATO REMS Patient Monitoring Form (outpatient) asks, per treatment session:
blood pressure prior to administration, about 40 minutes post-administration and prior
to treatment-session completion; whether vital signs were in an acceptable range prior
to administration and prior to completion; and the total time in minutes "from 1st
device administration to completion of monitoring" (at least 2 hours). DESIGN.md
"Clinical protocol", `esketamine-rems`.

Pure and clock-injected: `rems_form(record, now=...)`. Each blood pressure comes with
its timing, so a missing or late check is visible on the form data, never papered over:

- `before_dosing`: the latest valid reading between the session start and the first
  dose (one the cuff did not flag for a remeasurement, when there is one).
- `post_dose`: the valid reading in the protocol's post-dose window (35-45 minutes after
  the first dose in the `esketamine-rems` preset) closest to its middle; with none there,
  the first one after the window and before the close-of-session window (`late`).
- `before_completion`: the latest valid reading in the close-of-session window (opening
  2 hours after the last dose in the preset) up to the close; with none there, the
  latest reading after the post-dose window that is not the 40-minute one (`early`).

"Acceptable" is decided with the session's own protocol thresholds
(DESIGN.md "Thresholds"): no dosing-hold-range pressure (>= 160/100 by default), and
none of the conditions a reading can raise (severe hypertension, hypotension, pulse out
of range, a measurement the cuff flagged for a remeasurement; after dosing also a rise
over baseline). An elevated but not hold-range baseline is acceptable: it is advisory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from vitalsd.domain import Drug, require_utc
from vitalsd.exports.record import ReadingRecord, SessionRecord
from vitalsd.protocol import Protocol, load_protocol, parse_protocol
from vitalsd.thresholds import Baseline, Thresholds, baseline_of

# SPRAVATO prescribing information 2.4 / the REMS form: monitor for at least 2 hours.
REMS_MINIMUM_MONITORING: Final = timedelta(hours=2)
# "About 40 minutes": used when the protocol has no [post_dose] window of its own.
DEFAULT_POST_DOSE_OPENS: Final = timedelta(minutes=35)
DEFAULT_POST_DOSE_CLOSES: Final = timedelta(minutes=45)


class Timing(StrEnum):
    """How a form blood pressure relates to the time the form asks about."""

    ON_TIME = "on_time"
    LATE = "late"  # the 40-minute reading, taken after its window closed
    EARLY = "early"  # the completion reading, taken before its window opened
    MISSING = "missing"  # the moment has passed without a reading
    PENDING = "pending"  # the moment has not come yet (session still running)


@dataclass(frozen=True)
class FormBloodPressure:
    """One of the three blood pressures on the form (mmHg), with its reading and timing."""

    timing: Timing
    reading_id: int | None = None
    systolic: float | None = None
    diastolic: float | None = None
    measured_at: datetime | None = None
    minutes_after_first_dose: float | None = None

    @property
    def shown(self) -> str:
        if self.systolic is None or self.diastolic is None:
            return "-"
        return f"{self.systolic:.0f}/{self.diastolic:.0f} mmHg"


@dataclass(frozen=True)
class RemsFormData:
    session_id: int
    first_administration_at: datetime | None
    completed_at: datetime | None
    esketamine_mg: float
    bp_before_dosing: FormBloodPressure
    bp_post_dose: FormBloodPressure
    bp_before_completion: FormBloodPressure
    vital_signs_acceptable_before_dosing: bool | None
    vital_signs_acceptable_at_completion: bool | None
    # Whole minutes, rounded down: the form must not show 120 for 119.6 minutes.
    total_monitoring_minutes: int | None
    minimum_monitoring_met: bool | None
    problems: tuple[str, ...]


class NotARemsSession(ValueError):
    """The session is neither on a REMS protocol nor has an esketamine dose."""


def session_protocol(record: SessionRecord) -> Protocol:
    """The protocol as it was when the session started (kept in the session row)."""
    if record.protocol_toml.strip():
        return parse_protocol(record.protocol_toml, f"session {record.id} protocol")
    return load_protocol(record.protocol)


def is_rems_session(record: SessionRecord, protocol: Protocol) -> bool:
    return protocol.rems_monitoring_form or any(
        d.drug == Drug.ESKETAMINE.value for d in record.doses
    )


def _minutes(delta: timedelta) -> float:
    return delta / timedelta(minutes=1)


def _form_bp(reading: ReadingRecord, timing: Timing, first_dose: datetime) -> FormBloodPressure:
    return FormBloodPressure(
        timing=timing,
        reading_id=reading.id,
        systolic=reading.systolic,
        diastolic=reading.diastolic,
        measured_at=reading.measured_at,
        minutes_after_first_dose=round(_minutes(reading.measured_at - first_dose), 1),
    )


def _prefer_clean(readings: list[ReadingRecord]) -> list[ReadingRecord]:
    clean = [r for r in readings if not r.as_domain().needs_remeasure]
    return clean or readings


def _acceptable(
    reading: ReadingRecord, thresholds: Thresholds, baseline: Baseline | None, post_dose: bool
) -> bool:
    domain = reading.as_domain()
    assert domain.systolic is not None and domain.diastolic is not None
    single = Baseline(domain.systolic, domain.diastolic, (domain.id,))
    if thresholds.is_dosing_hold(single):
        return False
    return not thresholds.assess(domain, baseline, post_dose).findings


def rems_form(record: SessionRecord, *, now: datetime) -> RemsFormData:
    """The form's values for one session at `now` (an open session shows `pending`)."""
    now = require_utc(now, "now")
    protocol = session_protocol(record)
    if not is_rems_session(record, protocol):
        raise NotARemsSession(
            f"session {record.id} uses protocol {record.protocol!r} and has no esketamine "
            "dose: the REMS patient monitoring form is for esketamine sessions"
        )
    thresholds = Thresholds(protocol.thresholds)
    valid = [r for r in record.readings if r.valid]
    problems: list[str] = []
    end = record.closed_at if record.closed_at is not None else now
    esketamine_mg = sum(d.amount_mg for d in record.doses if d.drug == Drug.ESKETAMINE.value)

    if not record.doses:
        waiting = Timing.PENDING if record.closed_at is None else Timing.MISSING
        problems.append("no dose recorded")
        return RemsFormData(
            session_id=record.id,
            first_administration_at=None,
            completed_at=record.closed_at,
            esketamine_mg=esketamine_mg,
            bp_before_dosing=FormBloodPressure(waiting),
            bp_post_dose=FormBloodPressure(waiting),
            bp_before_completion=FormBloodPressure(waiting),
            vital_signs_acceptable_before_dosing=None,
            vital_signs_acceptable_at_completion=None,
            total_monitoring_minutes=None,
            minimum_monitoring_met=None,
            problems=tuple(problems),
        )

    first_dose = record.doses[0].given_at
    last_dose = max(d.ended_at or d.given_at for d in record.doses)

    # Before dosing.
    pre_dose = _prefer_clean([r for r in valid if record.started_at <= r.measured_at <= first_dose])
    acceptable_before: bool | None = None
    if pre_dose:
        before_reading = pre_dose[-1]
        bp_before = _form_bp(before_reading, Timing.ON_TIME, first_dose)
        acceptable_before = _acceptable(before_reading, thresholds, None, post_dose=False)
    else:
        bp_before = FormBloodPressure(Timing.MISSING)
        problems.append("no blood pressure before the first dose")

    # Before completion: the close-of-session window.
    close_opens = last_dose + protocol.close.opens_after_last_dose
    in_close = [r for r in valid if close_opens <= r.measured_at <= end]
    completion_reading = in_close[-1] if in_close else None

    # About 40 minutes after the first dose.
    rule = protocol.post_dose
    opens = first_dose + (rule.opens_after if rule else DEFAULT_POST_DOSE_OPENS)
    closes = first_dose + (rule.closes_after if rule else DEFAULT_POST_DOSE_CLOSES)
    middle = opens + (closes - opens) / 2
    in_window = [r for r in valid if opens <= r.measured_at <= closes]
    # A reading in the close-of-session window is no 40-minute check, however late.
    after_window = [r for r in valid if closes < r.measured_at < close_opens]
    post_reading: ReadingRecord | None = None
    if in_window:
        post_reading = min(in_window, key=lambda r: (abs(r.measured_at - middle), r.measured_at))
        bp_post = _form_bp(post_reading, Timing.ON_TIME, first_dose)
    elif after_window:
        post_reading = after_window[0]
        bp_post = _form_bp(post_reading, Timing.LATE, first_dose)
        problems.append(
            f"the post-dose blood pressure was taken late, "
            f"{bp_post.minutes_after_first_dose:g} min after the first dose"
        )
    else:
        if now <= closes and record.closed_at is None:
            bp_post = FormBloodPressure(Timing.PENDING)
        else:
            bp_post = FormBloodPressure(Timing.MISSING)
            problems.append("no blood pressure about 40 minutes after the first dose")

    acceptable_after: bool | None = None
    baseline = baseline_of(
        [r.as_domain() for r in valid if r.measured_at >= record.started_at],
        first_dose,
        protocol.baseline.readings_averaged,
    )
    if completion_reading is not None:
        timing = Timing.ON_TIME if record.closed_at is not None else Timing.PENDING
        bp_completion = _form_bp(completion_reading, timing, first_dose)
        acceptable_after = _acceptable(completion_reading, thresholds, baseline, post_dose=True)
    else:
        earlier = [
            r for r in valid if closes < r.measured_at < close_opens and r is not post_reading
        ]
        if record.closed_at is None:
            bp_completion = FormBloodPressure(Timing.PENDING)
        elif earlier:
            bp_completion = _form_bp(earlier[-1], Timing.EARLY, first_dose)
            acceptable_after = _acceptable(earlier[-1], thresholds, baseline, post_dose=True)
            problems.append(
                "the last blood pressure before completion was taken before the "
                "close-of-session check opened"
            )
        else:
            bp_completion = FormBloodPressure(Timing.MISSING)
            problems.append("no blood pressure before the session was completed")

    total: int | None = None
    minimum_met: bool | None = None
    if record.closed_at is not None:
        monitored = record.closed_at - first_dose
        total = math.floor(_minutes(monitored))
        minimum_met = monitored >= REMS_MINIMUM_MONITORING
        if not minimum_met:
            problems.append(
                f"monitored {total} min after the first dose, less than the REMS minimum "
                f"of {_minutes(REMS_MINIMUM_MONITORING):g} min"
            )
    if acceptable_before is False:
        problems.append("vital signs before dosing were outside the acceptable range")
    if acceptable_after is False:
        problems.append("vital signs at completion were outside the acceptable range")

    return RemsFormData(
        session_id=record.id,
        first_administration_at=first_dose,
        completed_at=record.closed_at,
        esketamine_mg=esketamine_mg,
        bp_before_dosing=bp_before,
        bp_post_dose=bp_post,
        bp_before_completion=bp_completion,
        vital_signs_acceptable_before_dosing=acceptable_before,
        vital_signs_acceptable_at_completion=acceptable_after,
        total_monitoring_minutes=total,
        minimum_monitoring_met=minimum_met,
        problems=tuple(problems),
    )

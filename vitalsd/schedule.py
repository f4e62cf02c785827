"""The check schedule: which blood-pressure checks a session needs, when, and their state.

Pure and clock-injected: `CheckSchedule(protocol).checks(facts, now)` derives every check
from the protocol, the session's doses and readings and the time; nothing is stored here.
Windows are closed intervals: a reading at either edge counts (back-to-back windows give
their shared edge to the earlier one). A check is `pending` before its window opens, `due`
while it is open, `overdue` once it has closed without a valid reading, `satisfied` by a
valid reading inside it (even one delivered late), and `waived` when a user waived it, the
session closed before the window did, or it became required only after its window had
closed (requirements apply forward, DESIGN.md "Time").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from vitalsd.domain import (
    CheckKind,
    CheckState,
    Dose,
    DoseFlag,
    Phase,
    Reading,
    SessionFacts,
    age_in_years,
)
from vitalsd.protocol import PostDoseCondition, Protocol
from vitalsd.thresholds import Baseline, Thresholds, baseline_of

SESSION_CLOSED_REASON = "session closed"
REQUIRED_AFTER_WINDOW_REASON = "required after its window"
# Doses the record flags get the post-dose check whatever the protocol's conditions.
ALWAYS_CHECKED_DOSE_FLAGS = frozenset(
    {DoseFlag.NO_BASELINE, DoseFlag.NO_RECENT_BP, DoseFlag.HOLD_OVERRIDDEN}
)
# A check turns overdue the instant after its window closes (a reading at `window_end`
# still satisfies it); the timer loop wakes at that instant.
OVERDUE_AFTER = timedelta(microseconds=1)


@dataclass(frozen=True)
class Check:
    """One required reading. `key` is stable across recomputation (it names the dose and
    interval the check belongs to), so the shell can store and address checks by it."""

    key: str
    kind: CheckKind
    window_start: datetime | None
    window_end: datetime | None
    state: CheckState
    label: str
    satisfied_by: int | None = None
    waiver_reason: str | None = None


@dataclass(frozen=True)
class _Window:
    key: str
    kind: CheckKind
    start: datetime | None
    end: datetime | None
    label: str
    # Back-to-back windows (infusion, post-infusion) do not share their edge: a reading at
    # the edge belongs to the window (or the baseline) that ends there, so one reading
    # never satisfies two consecutive checks.
    exclusive_start: bool = False
    # A reading from here on answers the check, when that differs from `start` (the
    # close check is answered only by a recent one).
    answered_from: datetime | None = None
    # When the check became required (None: from the start). A check that became required
    # after its window closed is waived, never overdue.
    required_since: datetime | None = None
    # The close check is answered by the latest reading, which stops counting once older
    # than the protocol's close_reading_within.
    latest_answers: bool = False

    def covers(self, at: datetime) -> bool:
        start = self.answered_from if self.answered_from is not None else self.start
        if start is None:
            return False
        after_start = at > start if self.exclusive_start else at >= start
        return after_start and (self.end is None or at <= self.end)


def _dose_ref(dose: Dose, index: int) -> str:
    return f"d{dose.id}" if dose.id is not None else f"i{index}"


def _minutes(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 60:g}"


def derive_dose_increase(
    previous_session_total_mg: float | None, session_total_mg_before: float, amount_mg: float
) -> bool:
    """A dose is an increase when it takes this session's total of the drug above the
    patient's previous session's total (the first session has nothing to increase on)."""
    if previous_session_total_mg is None:
        return False
    return session_total_mg_before + amount_mg > previous_session_total_mg


class CheckSchedule:
    """The checks a protocol asks for (DESIGN.md "Clinical protocol")."""

    def __init__(self, protocol: Protocol) -> None:
        self.protocol = protocol
        self.thresholds = Thresholds(protocol.thresholds)

    # -- facts the rules derive -------------------------------------------------------

    def age_at_start(self, facts: SessionFacts) -> int | None:
        if facts.date_of_birth is None:
            return None
        # The local date of the start: a 19:30 New York session the evening before a
        # 65th birthday is still at 64 (issue #13, low finding).
        return age_in_years(facts.date_of_birth, facts.started_at.astimezone(facts.zone).date())

    def baseline(self, facts: SessionFacts) -> Baseline | None:
        return baseline_of(
            facts.readings, facts.first_dose_at, self.protocol.baseline.readings_averaged
        )

    def baseline_elevated(self, facts: SessionFacts) -> bool:
        baseline = self.baseline(facts)
        return baseline is not None and self.thresholds.is_elevated_baseline(
            baseline, self.age_at_start(facts)
        )

    def post_dose_reasons(self, facts: SessionFacts) -> frozenset[PostDoseCondition]:
        """Which of the protocol's post-dose conditions hold for this session."""
        rule = self.protocol.post_dose
        if rule is None:
            return frozenset()
        holding: set[PostDoseCondition] = set()
        if PostDoseCondition.ALWAYS in rule.when:
            holding.add(PostDoseCondition.ALWAYS)
        if PostDoseCondition.ELEVATED_BASELINE in rule.when and self.baseline_elevated(facts):
            holding.add(PostDoseCondition.ELEVATED_BASELINE)
        if (
            PostDoseCondition.COURSE_START in rule.when
            and facts.course_session <= self.protocol.course_start_sessions
        ):
            holding.add(PostDoseCondition.COURSE_START)
        if PostDoseCondition.DOSE_INCREASE in rule.when and any(d.increase for d in facts.doses):
            holding.add(PostDoseCondition.DOSE_INCREASE)
        return frozenset(holding)

    @property
    def doses_are_infusions(self) -> bool:
        return self.protocol.infusion is not None

    def _dose_end(self, dose: Dose) -> datetime | None:
        """When a dose's active period ends: an infusion's stop (None while it runs)."""
        return dose.ended_at if self.doses_are_infusions else dose.given_at

    # -- windows ------------------------------------------------------------------------

    def _windows(self, facts: SessionFacts, now: datetime) -> list[_Window]:
        protocol = self.protocol
        doses = sorted(facts.doses, key=lambda d: d.given_at)
        first_dose_at = doses[0].given_at if doses else None
        windows: list[_Window] = []
        if protocol.baseline.required:
            windows.append(
                _Window(
                    "baseline",
                    CheckKind.BASELINE,
                    facts.started_at,
                    first_dose_at,
                    "Baseline before the first dose",
                )
            )
        confirm = self._confirm_window(facts, first_dose_at)
        if confirm is not None:
            windows.append(confirm)
        if protocol.post_dose is not None:
            rule = protocol.post_dose
            required_since = self._post_dose_required_since(facts)
            for index, dose in enumerate(doses):
                since = required_since
                if dose.flags & ALWAYS_CHECKED_DOSE_FLAGS:
                    since = dose.given_at
                elif since is not None:
                    since = max(since, dose.given_at)
                if since is None:
                    continue
                windows.append(
                    _Window(
                        f"post_dose:{_dose_ref(dose, index)}",
                        CheckKind.POST_DOSE,
                        dose.given_at + rule.opens_after,
                        dose.given_at + rule.closes_after,
                        f"Post-dose check {_minutes(rule.opens_after)}-"
                        f"{_minutes(rule.closes_after)} min after the dose",
                        required_since=since,
                    )
                )
        if protocol.infusion is not None:
            for index, dose in enumerate(doses):
                windows.extend(self._infusion_windows(dose, index, now))
        windows.extend(self._follow_up_windows(facts))
        windows.extend(self._side_effect_windows(facts))
        windows.append(self._close_window(facts, doses, now))
        return windows

    def _post_dose_required_since(self, facts: SessionFacts) -> datetime | None:
        """When the protocol's post-dose conditions first held (None: they never did). A
        condition that appears later (an elevated pre-dose reading entered after the
        dose, a later dose increase) requires only the checks still ahead of it."""
        reasons = self.post_dose_reasons(facts)
        if not reasons:
            return None
        if reasons & {PostDoseCondition.ALWAYS, PostDoseCondition.COURSE_START}:
            return facts.started_at
        moments: list[datetime] = []
        increases = [d.given_at for d in facts.doses if d.increase]
        if PostDoseCondition.DOSE_INCREASE in reasons and increases:
            moments.append(min(increases))
        if PostDoseCondition.ELEVATED_BASELINE in reasons:
            elevated_at = self._baseline_elevated_since(facts)
            if elevated_at is not None:
                moments.append(elevated_at)
        return min(moments, default=facts.started_at)

    def _baseline_elevated_since(self, facts: SessionFacts) -> datetime | None:
        """The moment the baseline first showed elevated, as readings reached us."""
        known = sorted((r for r in facts.readings if r.valid), key=lambda r: r.known_at)
        age = self.age_at_start(facts)
        averaged = self.protocol.baseline.readings_averaged
        for count in range(1, len(known) + 1):
            baseline = baseline_of(known[:count], facts.first_dose_at, averaged)
            if baseline is not None and self.thresholds.is_elevated_baseline(baseline, age):
                return known[count - 1].known_at
        return None

    def is_stable(self, facts: SessionFacts, reading: Reading) -> bool:
        """Back below the rise, hold and severe ranges (DESIGN.md "Monitor until stable")."""
        if not reading.valid or reading.systolic is None or reading.diastolic is None:
            return True
        thresholds = self.thresholds
        if thresholds.in_hold_range(reading.systolic, reading.diastolic):
            return False
        first_dose_at = facts.first_dose_at
        if first_dose_at is None or reading.measured_at <= first_dose_at:
            return True
        baseline = self.baseline(facts)
        return baseline is None or not thresholds.is_rise(reading, baseline)

    def _follow_up_windows(self, facts: SessionFacts) -> list[_Window]:
        """After a post-dose reading in the rise, hold or severe range, a follow-up check
        (sooner after a severe one), answered by any later reading: again and again until
        a reading is back below them (the esketamine label: monitor until stable)."""
        first_dose_at = facts.first_dose_at
        if first_dose_at is None:
            return []
        rule = self.protocol.safety
        windows: list[_Window] = []
        post_dose = sorted(
            (r for r in facts.readings if r.valid and r.measured_at > first_dose_at),
            key=lambda r: r.measured_at,
        )
        for index, reading in enumerate(post_dose):
            if self.is_stable(facts, reading):
                continue
            assert reading.systolic is not None and reading.diastolic is not None
            severe = self.thresholds.is_severe(reading.systolic, reading.diastolic)
            after = rule.follow_up_after_severe if severe else rule.follow_up_after
            opens = reading.measured_at + after
            if index + 1 < len(post_dose) and post_dose[index + 1].measured_at < opens:
                continue  # a reading came sooner: it ends the chain or asks for its own
            ref = f"r{reading.id}" if reading.id is not None else f"i{index}"
            windows.append(
                _Window(
                    f"follow_up:{ref}",
                    CheckKind.POST_DOSE,
                    opens,
                    opens + rule.follow_up_window,
                    f"Follow-up {_minutes(after)} min after an unstable reading",
                    required_since=reading.known_at,
                )
            )
        return windows

    def _side_effect_windows(self, facts: SessionFacts) -> list[_Window]:
        """A severe side effect asks for a blood pressure check a few minutes later
        (DESIGN.md "Monitor until stable"), a few minutes after it was observed; one
        entered later than that is checked from its entry (the check is never waived for
        having been entered late, nor overdue before it could have been taken)."""
        rule = self.protocol.safety
        windows = []
        for index, effect in enumerate(facts.side_effects):
            if effect.severity < rule.severe_side_effect_severity:
                continue
            opens = max(effect.observed_at + rule.side_effect_check_after, effect.known_at)
            ref = f"s{effect.id}" if effect.id is not None else f"i{index}"
            windows.append(
                _Window(
                    f"side_effect:{ref}",
                    CheckKind.POST_DOSE,
                    opens,
                    opens + rule.follow_up_window,
                    f"Check {_minutes(rule.side_effect_check_after)} min after severe "
                    f"{effect.effect.value}",
                    required_since=effect.known_at,
                )
            )
        return windows

    def _confirm_window(
        self, facts: SessionFacts, first_dose_at: datetime | None
    ) -> _Window | None:
        """An elevated first baseline reading asks for a confirming one after a rest."""
        rule = self.protocol.baseline
        if not (rule.required and rule.confirm_elevated):
            return None
        age = self.age_at_start(facts)
        pre_dose = sorted(
            (
                r
                for r in facts.readings
                if r.valid
                and r.measured_at >= facts.started_at
                and (first_dose_at is None or r.measured_at <= first_dose_at)
            ),
            key=lambda r: r.measured_at,
        )
        for reading in pre_dose:
            single = baseline_of([reading], None, 1)
            if single is not None and self.thresholds.is_elevated_baseline(single, age):
                opens = reading.measured_at + rule.confirm_after
                closes = None if first_dose_at is None else max(opens, first_dose_at)
                return _Window(
                    "baseline:confirm",
                    CheckKind.BASELINE,
                    opens,
                    closes,
                    "Confirming baseline reading (the first was elevated)",
                )
        return None

    def _infusion_windows(self, dose: Dose, index: int, now: datetime) -> list[_Window]:
        assert self.protocol.infusion is not None
        interval = self.protocol.infusion.interval
        ref = _dose_ref(dose, index)
        start = dose.given_at
        windows: list[_Window] = []
        if dose.ended_at is None:
            # Running: every interval begun so far, and the next one (pending).
            count = 1 if now < start else int((now - start) / interval) + 2
        else:
            # Stopped: the whole intervals; the post-infusion checks cover the rest.
            count = int((dose.ended_at - start) / interval)
        for k in range(count):
            windows.append(
                _Window(
                    f"infusion:{ref}:{k + 1}",
                    CheckKind.INFUSION,
                    start + k * interval,
                    start + (k + 1) * interval,
                    f"Infusion check {k + 1} (every {_minutes(interval)} min)",
                    exclusive_start=True,
                )
            )
        rule = self.protocol.post_infusion
        if dose.ended_at is not None and rule is not None:
            stop = dose.ended_at
            end_of_observation = stop + rule.duration
            k = 0
            while stop + k * rule.interval < end_of_observation:
                windows.append(
                    _Window(
                        f"post_infusion:{ref}:{k + 1}",
                        CheckKind.POST_INFUSION,
                        stop + k * rule.interval,
                        min(stop + (k + 1) * rule.interval, end_of_observation),
                        f"Post-infusion check {k + 1} (every {_minutes(rule.interval)} min "
                        f"for {_minutes(rule.duration)} min)",
                        exclusive_start=True,
                    )
                )
                k += 1
        return windows

    def _close_window(self, facts: SessionFacts, doses: Sequence[Dose], now: datetime) -> _Window:
        opens: datetime | None
        if not doses:
            opens = facts.started_at
        else:
            ends = [self._dose_end(d) for d in doses]
            if any(end is None for end in ends):
                opens = None  # an infusion is still running
            else:
                opens = max(e for e in ends if e is not None) + (
                    self.protocol.close.opens_after_last_dose
                )
        fresh_from = None
        if opens is not None:
            reference = facts.closed_at if facts.closed_at is not None else now
            fresh_from = max(opens, reference - self.protocol.safety.close_reading_within)
        return _Window(
            "close",
            CheckKind.CLOSE,
            opens,
            facts.closed_at,
            "Close-of-session check",
            answered_from=fresh_from,
            latest_answers=True,
        )

    # -- states -------------------------------------------------------------------------

    def checks(self, facts: SessionFacts, now: datetime) -> tuple[Check, ...]:
        """Every check the session needs, with its window and its state at `now`."""
        valid = sorted((r for r in facts.readings if r.valid), key=lambda r: r.measured_at)
        effective_now = min(now, facts.closed_at) if facts.closed_at is not None else now
        return tuple(self._check(w, valid, facts, effective_now) for w in self._windows(facts, now))

    def _check(
        self, window: _Window, valid: Sequence[Reading], facts: SessionFacts, now: datetime
    ) -> Check:
        made = Check(
            window.key, window.kind, window.start, window.end, CheckState.PENDING, window.label
        )
        answering = [r for r in valid if window.covers(r.measured_at)]
        if answering:
            reading = answering[-1] if window.latest_answers else answering[0]
            return replace(made, state=CheckState.SATISFIED, satisfied_by=reading.id)
        reason = facts.waiver_for(window.key)
        if reason is not None:
            return replace(made, state=CheckState.WAIVED, waiver_reason=reason)
        if (
            window.required_since is not None
            and window.end is not None
            and window.required_since > window.end
        ):
            return replace(
                made, state=CheckState.WAIVED, waiver_reason=REQUIRED_AFTER_WINDOW_REASON
            )
        # Overdue only once the window has closed: a reading at its last instant counts.
        if window.end is not None and now > window.end:
            return replace(made, state=CheckState.OVERDUE)
        if facts.closed_at is not None:
            return replace(made, state=CheckState.WAIVED, waiver_reason=SESSION_CLOSED_REASON)
        if window.start is None or now < window.start:
            return made
        return replace(made, state=CheckState.DUE)

    def next_change(self, facts: SessionFacts, now: datetime) -> datetime | None:
        """The next moment a check's state or the session's phase changes by time alone:
        when the timer loop must wake for this session."""
        if facts.closed_at is not None:
            return None
        edges: list[datetime] = []
        by_id = {r.id: r for r in facts.readings}
        for check in self.checks(facts, now):
            if check.kind is CheckKind.CLOSE and check.state is CheckState.SATISFIED:
                # The close check's reading stops counting once it is no longer recent.
                answered = by_id.get(check.satisfied_by)
                if answered is not None:
                    stale = answered.measured_at + self.protocol.safety.close_reading_within
                    if stale + OVERDUE_AFTER > now:
                        edges.append(stale + OVERDUE_AFTER)
                continue
            if check.state in (CheckState.SATISFIED, CheckState.WAIVED):
                continue
            if check.window_start is not None and check.window_start > now:
                edges.append(check.window_start)
            if check.window_end is not None and check.window_end + OVERDUE_AFTER > now:
                edges.append(check.window_end + OVERDUE_AFTER)
        phase_edge = self._dosed_until(facts)
        if phase_edge is not None and phase_edge > now:
            edges.append(phase_edge)
        edges.extend(self._next_infusion_windows(facts, now))
        return min(edges, default=None)

    def _next_infusion_windows(self, facts: SessionFacts, now: datetime) -> list[datetime]:
        """When each running infusion adds its next window. Usually that is also the
        pending window's start, but a reading stamped ahead of `now` (a cuff clock running
        fast) can satisfy the pending window early, and the loop must still wake for it."""
        if self.protocol.infusion is None:
            return []
        interval = self.protocol.infusion.interval
        edges = []
        for dose in facts.doses:
            if dose.ended_at is not None:
                continue
            if now < dose.given_at:
                edges.append(dose.given_at)
            else:
                edges.append(dose.given_at + (int((now - dose.given_at) / interval) + 1) * interval)
        return edges

    # -- phase --------------------------------------------------------------------------

    def _dosed_until(self, facts: SessionFacts) -> datetime | None:
        """The acute period after a dose (the session shows `dosed`): an infusion while it
        runs, otherwise until the post-dose window closes (30 min if there is none)."""
        if not facts.doses:
            return None
        ends = [self._dose_end(d) for d in facts.doses]
        if any(end is None for end in ends):
            return None
        if self.doses_are_infusions:
            return max(e for e in ends if e is not None)
        acute = (
            self.protocol.post_dose.closes_after
            if self.protocol.post_dose is not None
            else timedelta(minutes=30)
        )
        return max(d.given_at for d in facts.doses) + acute

    def phase(self, facts: SessionFacts, now: datetime) -> Phase:
        if facts.closed_at is not None:
            return Phase.CLOSED
        if not facts.doses:
            has_reading = any(r.valid and r.measured_at >= facts.started_at for r in facts.readings)
            return Phase.BASELINE if has_reading else Phase.CHECKED_IN
        until = self._dosed_until(facts)
        if until is None or now < until:
            return Phase.DOSED
        return Phase.OBSERVATION


def next_check(checks: Iterable[Check]) -> Check | None:
    """The check a tile counts down to: the due one closing first, else the next to open."""
    candidates = list(checks)
    closing = [
        (c.window_end, c)
        for c in candidates
        if c.state is CheckState.DUE and c.window_end is not None
    ]
    if closing:
        return min(closing, key=lambda pair: pair[0])[1]
    open_ended = [c for c in candidates if c.state is CheckState.DUE]
    if open_ended:
        return open_ended[0]
    opening = [
        (c.window_start, c)
        for c in candidates
        if c.state is CheckState.PENDING and c.window_start is not None
    ]
    return min(opening, key=lambda pair: pair[0])[1] if opening else None

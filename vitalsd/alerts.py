"""The alert state machine (DESIGN.md "Alerts"): pure, clock-injected, audited.

Every transition returns the new `Alert` and the `AuditEntry` that records who did what
and when; the shell stores both in one transaction. Lifecycle: `active` -> `acknowledged`
-> `resolved`, with `snoozed` as a time-limited pause of `active`. An unacknowledged
high-priority alert escalates once, after a delay, to the clinician role.

With an `AlarmPolicy` (DESIGN.md "Alarm behaviour", IEC 60601-1-8 style) high-priority
alerts latch until acknowledged, an acknowledged or snoozed alert whose condition worsens
sounds again, an unacknowledged high alert re-notifies on a period, and snoozes add up
to a cap.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from vitalsd.domain import AlertKind, AlertState, AuditAction, Priority, Role
from vitalsd.errors import InvalidInput, InvalidTransition
from vitalsd.thresholds import Finding

SYSTEM = "system"
DEFAULT_ESCALATION_DELAY = timedelta(minutes=2)  # DESIGN.md "Alerts"
DEFAULT_MAX_SNOOZE = timedelta(minutes=30)


@dataclass(frozen=True)
class AlarmPolicy:
    """The numbers of DESIGN.md "Alarm behaviour" (the protocol's [safety] table)."""

    renotify_high_every: timedelta = timedelta(minutes=2)
    snooze_total: timedelta = timedelta(minutes=30)
    snooze_total_high: timedelta = timedelta(minutes=5)
    worsening_systolic: float = 10
    worsening_diastolic: float = 5

    def snooze_cap(self, priority: Priority) -> timedelta:
        return self.snooze_total_high if priority is Priority.HIGH else self.snooze_total


# Decisions that are the clinician's go to the clinician from the start.
CLINICIAN_KINDS = frozenset({AlertKind.DOSING_HOLD, AlertKind.CONSIDER_DEFERRING})


@dataclass(frozen=True)
class AuditEntry:
    """One stored line of the alert's history (append-only)."""

    action: AuditAction
    at: datetime
    by: str
    from_state: AlertState | None
    to_state: AlertState
    priority: Priority
    note: str | None = None


@dataclass(frozen=True)
class Alert:
    kind: AlertKind
    priority: Priority
    message: str
    state: AlertState
    condition: str
    raised_at: datetime
    # The escalation clock runs from the latest (re-)notification.
    notified_at: datetime
    session_id: int | None = None
    chair_id: int | None = None
    reading_id: int | None = None
    check_id: int | None = None
    id: int | None = None
    unverified: bool = False
    addressed_to: Role = Role.NURSE
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    snoozed_until: datetime | None = None
    escalated_at: datetime | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution_note: str | None = None
    # Alarm behaviour: a latched high alert whose condition cleared; the latest reading of
    # the condition and its words (the alert keeps the ones that raised it too); the
    # values it last sounded for (worsening is measured from them); snoozing so far.
    condition_cleared_at: datetime | None = None
    latest_reading_id: int | None = None
    latest_message: str | None = None
    notified_systolic: float | None = None
    notified_diastolic: float | None = None
    snoozed_total: timedelta = timedelta(0)
    # The limit the condition crossed (fixed by the protocol for the alert's life).
    limit: str | None = None

    @property
    def is_open(self) -> bool:
        return self.state is not AlertState.RESOLVED

    def _audit(
        self, action: AuditAction, at: datetime, by: str, after: Alert, note: str | None = None
    ) -> AuditEntry:
        return AuditEntry(action, at, by, self.state, after.state, after.priority, note)

    @classmethod
    def raise_(
        cls,
        finding: Finding,
        at: datetime,
        *,
        session_id: int | None = None,
        chair_id: int | None = None,
        reading_id: int | None = None,
        check_id: int | None = None,
    ) -> tuple[Alert, AuditEntry]:
        alert = cls(
            kind=finding.kind,
            priority=finding.priority,
            message=finding.message,
            state=AlertState.ACTIVE,
            condition=finding.condition,
            raised_at=at,
            notified_at=at,
            session_id=session_id,
            chair_id=chair_id,
            reading_id=reading_id,
            check_id=check_id,
            unverified=finding.unverified,
            addressed_to=Role.CLINICIAN if finding.kind in CLINICIAN_KINDS else Role.NURSE,
            latest_reading_id=reading_id,
            latest_message=finding.message,
            notified_systolic=finding.systolic,
            notified_diastolic=finding.diastolic,
            limit=finding.limit,
        )
        return alert, AuditEntry(AuditAction.RAISED, at, SYSTEM, None, alert.state, alert.priority)

    def _require(self, action: str, *states: AlertState) -> None:
        if self.state not in states:
            allowed = " or ".join(s.value for s in states)
            raise InvalidTransition(
                f"cannot {action} an alert that is {self.state.value} (it must be {allowed})"
            )

    def acknowledge(self, by: str, at: datetime) -> tuple[Alert, AuditEntry]:
        self._require("acknowledge", AlertState.ACTIVE, AlertState.SNOOZED)
        after = replace(
            self,
            state=AlertState.ACKNOWLEDGED,
            acknowledged_at=at,
            acknowledged_by=by,
            snoozed_until=None,
        )
        return after, self._audit(AuditAction.ACKNOWLEDGED, at, by, after)

    def snooze(
        self,
        by: str,
        at: datetime,
        minutes: float,
        max_snooze: timedelta = DEFAULT_MAX_SNOOZE,
        policy: AlarmPolicy | None = None,
    ) -> tuple[Alert, AuditEntry]:
        """Silence for a bounded time: a snooze is never "off indefinitely". With a policy
        snoozes add up, renewals included, to the priority's cap."""
        self._require("snooze", AlertState.ACTIVE, AlertState.SNOOZED)
        length = timedelta(minutes=minutes)
        if not timedelta(0) < length <= max_snooze:
            raise InvalidInput(
                f"snooze minutes must be more than 0 and at most "
                f"{max_snooze.total_seconds() / 60:g}, got {minutes:g}"
            )
        until = at + length
        current_end = self.snoozed_until if self.state is AlertState.SNOOZED else None
        added = until - max(at, current_end) if current_end is not None else length
        total = self.snoozed_total + max(added, timedelta(0))
        if policy is not None:
            cap = policy.snooze_cap(self.priority)
            if total > cap:
                left = max(cap - self.snoozed_total, timedelta(0)).total_seconds() / 60
                raise InvalidInput(
                    f"a {self.priority.value}-priority alert is snoozed at most "
                    f"{cap.total_seconds() / 60:g} minutes in all; {left:g} left"
                )
        after = replace(self, state=AlertState.SNOOZED, snoozed_until=until, snoozed_total=total)
        return after, self._audit(AuditAction.SNOOZED, at, by, after, f"for {minutes:g} min")

    def expire_snooze(self, at: datetime) -> tuple[Alert, AuditEntry]:
        self._require("end the snooze of", AlertState.SNOOZED)
        if self.snoozed_until is None or at < self.snoozed_until:
            raise InvalidTransition("the snooze has not run out yet")
        after = replace(self, state=AlertState.ACTIVE, snoozed_until=None, notified_at=at)
        return after, self._audit(AuditAction.SNOOZE_EXPIRED, at, SYSTEM, after)

    def clear_condition(
        self, at: datetime, policy: AlarmPolicy | None, note: str
    ) -> tuple[Alert, AuditEntry] | None:
        """The condition is gone. Medium and low alerts resolve; a high one latches until
        someone acknowledges it (resolved at once if it was acknowledged already)."""
        latches = (
            policy is not None
            and self.priority is Priority.HIGH
            and self.state in (AlertState.ACTIVE, AlertState.SNOOZED)
        )
        if not latches:
            return self.resolve(SYSTEM, at, note)
        if self.condition_cleared_at is not None:
            return None
        after = replace(self, condition_cleared_at=at)
        return after, self._audit(
            AuditAction.CONDITION_CLEARED, at, SYSTEM, after, f"latched: {note}"
        )

    def settle(self, at: datetime) -> tuple[Alert, AuditEntry] | None:
        """An acknowledged alert whose condition had cleared while it latched is done."""
        if self.state is AlertState.ACKNOWLEDGED and self.condition_cleared_at is not None:
            return self.resolve(SYSTEM, at, "acknowledged after its condition cleared")
        return None

    def renotify_due_at(self, policy: AlarmPolicy | None) -> datetime | None:
        """An unacknowledged high alert sounds again on a period until acknowledged."""
        if (
            policy is not None
            and self.state is AlertState.ACTIVE
            and self.priority is Priority.HIGH
            and self.escalated_at is not None
        ):
            return self.notified_at + policy.renotify_high_every
        return None

    def renotify(self, at: datetime) -> tuple[Alert, AuditEntry]:
        self._require("re-notify", AlertState.ACTIVE)
        after = replace(self, notified_at=at)
        return after, self._audit(AuditAction.RENOTIFIED, at, SYSTEM, after, "not yet acknowledged")

    def _worse_than_notified(self, finding: Finding, policy: AlarmPolicy) -> bool:
        if finding.priority.rank > self.priority.rank:
            return True
        pairs = (
            (finding.systolic, self.notified_systolic, policy.worsening_systolic),
            (finding.diastolic, self.notified_diastolic, policy.worsening_diastolic),
        )
        for seen, notified, step in pairs:
            if seen is None or notified is None:
                continue
            further = notified - seen if finding.lower_is_worse else seen - notified
            if further >= step:
                return True
        return False

    def escalation_due_at(self, delay: timedelta) -> datetime | None:
        """When an unacknowledged high-priority alert escalates (once)."""
        if (
            self.state is AlertState.ACTIVE
            and self.priority is Priority.HIGH
            and self.escalated_at is None
        ):
            return self.notified_at + delay
        return None

    def escalate(self, at: datetime) -> tuple[Alert, AuditEntry]:
        """Notify again, addressed to the clinician role."""
        self._require("escalate", AlertState.ACTIVE)
        if self.priority is not Priority.HIGH or self.escalated_at is not None:
            raise InvalidTransition("only an unescalated high-priority alert escalates")
        after = replace(self, escalated_at=at, notified_at=at, addressed_to=Role.CLINICIAN)
        return after, self._audit(
            AuditAction.ESCALATED, at, SYSTEM, after, "addressed to clinician"
        )

    def resolve(self, by: str, at: datetime, note: str) -> tuple[Alert, AuditEntry]:
        """Resolved by a user (with a note) or by the system when the condition cleared."""
        self._require("resolve", AlertState.ACTIVE, AlertState.ACKNOWLEDGED, AlertState.SNOOZED)
        if not note.strip():
            raise InvalidInput("resolving an alert needs a note")
        after = replace(
            self,
            state=AlertState.RESOLVED,
            resolved_at=at,
            resolved_by=by,
            resolution_note=note,
            snoozed_until=None,
        )
        return after, self._audit(AuditAction.RESOLVED, at, by, after, note)

    def observe(
        self,
        finding: Finding,
        at: datetime,
        reading_id: int | None = None,
        policy: AlarmPolicy | None = None,
    ) -> tuple[Alert, AuditEntry] | None:
        """The same condition seen again. No duplicate alert: nothing changes, unless the
        finding is worse (priority raised, active again, notified again) or confirms an
        unverified alert. With a policy the alert also follows the latest value, a latched
        alert unlatches, and an acknowledged or snoozed one that worsens sounds again."""
        if finding.condition != self.condition or not self.is_open:
            raise InvalidTransition("a finding only updates an open alert of its condition")
        if policy is not None:
            return self._observe_with(policy, finding, at, reading_id)
        if finding.priority.rank > self.priority.rank:
            after = replace(
                self,
                priority=finding.priority,
                message=finding.message,
                state=AlertState.ACTIVE,
                reading_id=reading_id if reading_id is not None else self.reading_id,
                unverified=finding.unverified,
                notified_at=at,
                snoozed_until=None,
                escalated_at=None,
            )
            note = f"{self.priority.value} -> {finding.priority.value}"
            return after, self._audit(AuditAction.PRIORITY_RAISED, at, SYSTEM, after, note)
        if self.unverified and not finding.unverified:
            after = replace(
                self,
                message=finding.message,
                unverified=False,
                reading_id=reading_id if reading_id is not None else self.reading_id,
            )
            return after, self._audit(
                AuditAction.VERIFIED, at, SYSTEM, after, "confirmed by a reading"
            )
        return None

    def _observe_with(
        self, policy: AlarmPolicy, finding: Finding, at: datetime, reading_id: int | None
    ) -> tuple[Alert, AuditEntry] | None:
        latest = reading_id if reading_id is not None else self.latest_reading_id
        followed = replace(
            self,
            latest_reading_id=latest,
            latest_message=finding.message,
            condition_cleared_at=None,
            unverified=self.unverified and finding.unverified,
        )
        worse = self._worse_than_notified(finding, policy)
        if worse and (
            self.state is not AlertState.ACTIVE or finding.priority.rank > self.priority.rank
        ):
            after = replace(
                followed,
                priority=max(finding.priority, self.priority, key=lambda p: p.rank),
                message=finding.message,
                reading_id=latest,
                state=AlertState.ACTIVE,
                notified_at=at,
                notified_systolic=finding.systolic,
                notified_diastolic=finding.diastolic,
                snoozed_until=None,
                escalated_at=None,
                acknowledged_at=None,
                acknowledged_by=None,
            )
            note = f"worse: {finding.message}"
            return after, self._audit(AuditAction.WORSENED, at, SYSTEM, after, note)
        if followed == self:
            return None
        if self.condition_cleared_at is not None:
            return followed, self._audit(AuditAction.CONDITION_RETURNED, at, SYSTEM, followed)
        if self.unverified and not followed.unverified:
            after = replace(followed, message=finding.message, reading_id=latest)
            return after, self._audit(
                AuditAction.VERIFIED, at, SYSTEM, after, "confirmed by a reading"
            )
        return followed, self._audit(
            AuditAction.LATEST_VALUE, at, SYSTEM, followed, finding.message
        )

    def next_deadline(
        self, escalation_delay: timedelta, policy: AlarmPolicy | None = None
    ) -> datetime | None:
        """The next moment time alone changes this alert (snooze end, escalation or a
        re-notification)."""
        if self.state is AlertState.SNOOZED:
            return self.snoozed_until
        return self.escalation_due_at(escalation_delay) or self.renotify_due_at(policy)

    def due_transitions(
        self, now: datetime, escalation_delay: timedelta, policy: AlarmPolicy | None = None
    ) -> list[tuple[Alert, AuditEntry]]:
        """The transitions time has made due by `now`, in order."""
        steps: list[tuple[Alert, AuditEntry]] = []
        current = self
        if (
            current.state is AlertState.SNOOZED
            and current.snoozed_until is not None
            and now >= current.snoozed_until
        ):
            step = current.expire_snooze(current.snoozed_until)
            steps.append(step)
            current = step[0]
        due = current.escalation_due_at(escalation_delay)
        if due is not None and now >= due:
            step = current.escalate(due)
            steps.append(step)
            current = step[0]
        renotify = current.renotify_due_at(policy)
        while renotify is not None and now >= renotify:
            step = current.renotify(renotify)
            steps.append(step)
            current = step[0]
            renotify = current.renotify_due_at(policy)
        return steps


@dataclass(frozen=True)
class AlertChange:
    """A decision for the shell: store `after` (new when `before` is None) and `audit`."""

    before: Alert | None
    after: Alert
    audit: AuditEntry


def reconcile(
    open_alerts: Sequence[Alert],
    findings: Iterable[Finding],
    clears: Iterable[str],
    at: datetime,
    *,
    session_id: int | None = None,
    chair_id: int | None = None,
    reading_id: int | None = None,
    check_id: int | None = None,
    clear_note: str = "condition cleared",
    policy: AlarmPolicy | None = None,
) -> list[AlertChange]:
    """Turn what was seen into alert changes: raise an alert for a new condition, update
    the open alert of a persisting one (never a duplicate), resolve those that cleared
    (with a policy, a high one latches instead until acknowledged)."""
    by_condition = {a.condition: a for a in open_alerts if a.is_open}
    raised_now: set[str] = set()
    changes: list[AlertChange] = []
    for finding in findings:
        existing = by_condition.get(finding.condition)
        if existing is None:
            alert, audit = Alert.raise_(
                finding,
                at,
                session_id=session_id,
                chair_id=chair_id,
                reading_id=reading_id,
                check_id=check_id,
            )
            changes.append(AlertChange(None, alert, audit))
            by_condition[finding.condition] = alert
            raised_now.add(finding.condition)
            continue
        step = existing.observe(finding, at, reading_id, policy)
        if step is not None:
            changes.append(AlertChange(existing, *step))
            by_condition[finding.condition] = step[0]
    for condition in clears:
        existing = by_condition.get(condition)
        if existing is not None and condition not in raised_now:
            cleared = existing.clear_condition(at, policy, clear_note)
            if cleared is None:
                continue
            changes.append(AlertChange(existing, *cleared))
            if cleared[0].is_open:
                by_condition[condition] = cleared[0]
            else:
                del by_condition[condition]
    return changes

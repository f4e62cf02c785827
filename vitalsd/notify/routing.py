"""Who hears of an alert, and when: the escalation chain as a pure function of the
alert's state, the rules and `now` (no clock, no database, no network).

A chain is a list of tiers. Each tier goes out once per generation of the alert (a
worsening starts a new generation), at `after` from the chain's start while the alert
stays active (not acknowledged, snoozed or resolved), in order. A tier with no receipt
(delivered or shown) within the receipt timeout brings the next tier forward, and so
does an explicit request to hurry (`ChainState.hurried`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from vitalsd.notify.config import ChannelSettings, RuleSettings

EVERYONE = ("nurse", "clinician", "admin")


@dataclass(frozen=True)
class Tier:
    """One step of a chain. `roles` None: each channel's own configured roles."""

    index: int
    after: timedelta
    channels: tuple[str, ...]
    roles: tuple[str, ...] | None = None


def chain_of(
    priority: str,
    kind: str,
    addressed_to: str,
    rules: Sequence[RuleSettings],
    channels: Sequence[ChannelSettings],
    escalation_delay: timedelta,
) -> tuple[Tier, ...]:
    """The tiers for an alert. With rules configured: every matching rule is a tier,
    earliest first. Without: the default chain (README "Getting alerts on your phone")."""
    if rules:
        matching = [
            rule
            for rule in rules
            if (not rule.priorities or priority in rule.priorities)
            and (not rule.kinds or kind in rule.kinds)
        ]
        ordered = sorted(matching, key=lambda rule: rule.after)
        return tuple(
            Tier(index, rule.after, tuple(rule.channels)) for index, rule in enumerate(ordered)
        )
    return default_chain(priority, addressed_to, channels, escalation_delay)


def default_chain(
    priority: str,
    addressed_to: str,
    channels: Sequence[ChannelSettings],
    escalation_delay: timedelta,
) -> tuple[Tier, ...]:
    """High: whoever the alert is addressed to (nurses; a dosing hold: clinicians) at
    once, through web push and every ward channel; the clinicians after the escalation
    delay; everyone on every channel after twice the delay. Medium: the first tier only.
    Low: the dashboard alone."""
    if priority == "low":
        return ()
    first = tuple(
        c.name for c in channels if c.kind == "webpush" or not c.roles or addressed_to in c.roles
    )
    tiers = [Tier(0, timedelta(0), first, (addressed_to,))]
    if priority == "high":
        clinicians = tuple(
            c.name for c in channels if c.kind == "webpush" or "clinician" in c.roles
        )
        if addressed_to != "clinician":
            tiers.append(Tier(1, escalation_delay, clinicians, ("clinician",)))
        tiers.append(
            Tier(
                len(tiers), escalation_delay * len(tiers), tuple(c.name for c in channels), EVERYONE
            )
        )
    return tuple(tiers)


@dataclass(frozen=True)
class ChainState:
    """What the notifier keeps of one alert's chain (this generation)."""

    active: bool  # the alert is active: not acknowledged, snoozed or resolved
    started_at: datetime
    fired: Mapping[int, datetime]  # tier index -> when it went out
    receipted: frozenset[int] = frozenset()  # tiers some recipient confirmed
    hurried: bool = False  # asked to escalate now: the next tier goes at once


def due_tiers(
    state: ChainState, tiers: Sequence[Tier], now: datetime, receipt_timeout: timedelta
) -> list[int]:
    """The tiers that go out now, in order (several when their times have all passed,
    e.g. at the end of a snooze)."""
    if not state.active:
        return []
    fired = dict(state.fired)
    due: list[int] = []
    hurried = state.hurried
    for tier in tiers:
        if tier.index in fired:
            continue
        previous = fired.get(tier.index - 1) if tier.index > 0 else None
        if tier.index > 0 and previous is None:
            break  # in order: the one before has not gone yet
        on_time = now >= state.started_at + tier.after
        unanswered = (
            previous is not None
            and tier.index - 1 not in state.receipted
            and tier.index - 1 not in due
            and now >= previous + receipt_timeout
        )
        if not (on_time or unanswered or hurried):
            break
        hurried = False
        due.append(tier.index)
        fired[tier.index] = now
    return due


def next_deadline(
    state: ChainState, tiers: Sequence[Tier], receipt_timeout: timedelta
) -> datetime | None:
    """When the next tier falls due by time alone (None: no more, or not active)."""
    if not state.active:
        return None
    for tier in tiers:
        if tier.index in state.fired:
            continue
        moments = [state.started_at + tier.after]
        previous = state.fired.get(tier.index - 1)
        if previous is not None and tier.index - 1 not in state.receipted:
            moments.append(previous + receipt_timeout)
        return min(moments)
    return None


class Action(StrEnum):
    """What an alert event does to its chain."""

    START = "start"  # a new alert: the chain begins
    RESTART = "restart"  # worse: a new generation, from the first tier
    REPEAT = "repeat"  # sound again to every tier reached so far
    HURRY = "hurry"  # escalate now: the next tier goes at once
    RESUME = "resume"  # a snooze ran out: active again, repeat to those reached
    STOP = "stop"  # acknowledged, snoozed or resolved: nothing more goes out
    FOLLOW = "follow"  # a change to show, nothing to send


# `alert_updated` reasons (`vitalsd.domain.AuditAction`) and what they do to a chain.
REASONS: Mapping[str, Action] = {
    "acknowledged": Action.STOP,
    "snoozed": Action.STOP,
    "resolved": Action.STOP,
    "worsened": Action.RESTART,
    "priority_raised": Action.RESTART,
    "renotified": Action.REPEAT,
    # The clinic's own escalation (to the clinician role after the escalation delay) is
    # the default chain's second tier, timed here from the raise: it sends nothing more,
    # and configured tiers keep their own `after_minutes`.
    "escalated": Action.FOLLOW,
    "snooze_expired": Action.RESUME,
}


def action_of(event_type: str, reason: str | None) -> Action:
    if event_type == "alert":
        return Action.START
    return REASONS.get(reason or "", Action.FOLLOW)


def transition_name(generation: int, tier: int) -> str:
    """The transition a tier's notification announces."""
    if tier == 0:
        return "raised" if generation == 0 else "worsened"
    return "escalated"


def notification_key(alert_id: int, transition: str, tier: int, recipient: str) -> str:
    """The idempotency key (NOTIFY_CONTRACT.md): one notification per alert, transition,
    tier and recipient. A transition that happens more than once carries its
    generation or event number (`worsened.2`, `renotified.118`)."""
    return f"{alert_id}:{transition}:{tier}:{recipient}"

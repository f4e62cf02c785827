"""The escalation chain as a pure function of the alert's state, the rules and `now`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.clock import FakeClock
from vitalsd.notify.config import ChannelSettings, RuleSettings
from vitalsd.notify.routing import (
    Action,
    ChainState,
    action_of,
    chain_of,
    default_chain,
    due_tiers,
    next_deadline,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
PAGER = ChannelSettings(name="pager", kind="webhook", url="http://x/h", secret=SECRET)
DOCTOR = ChannelSettings(
    name="doctor", kind="apprise", url="json://localhost/", roles=["clinician"]
)
PHONES = ChannelSettings(name="phones", kind="webpush")
RULES = [
    RuleSettings(priorities=["high"], channels=["doctor"], after_minutes=5),
    RuleSettings(priorities=["high"], channels=["pager"]),
    RuleSettings(priorities=["medium"], kinds=["hypotension"], channels=["pager"]),
]
TIMEOUT = timedelta(seconds=60)


def chain(priority: str = "high", kind: str = "severe_hypertension"):  # type: ignore[no-untyped-def]
    return chain_of(priority, kind, "nurse", RULES, [PAGER, DOCTOR], timedelta(minutes=2))


def test_configured_rules_become_tiers_earliest_first() -> None:
    tiers = chain()
    assert [(t.channels, t.after) for t in tiers] == [
        (("pager",), timedelta(0)),
        (("doctor",), timedelta(minutes=5)),
    ]


def test_a_rule_with_kinds_matches_only_those_kinds() -> None:
    assert [t.channels for t in chain("medium", "hypotension")] == [("pager",)]
    assert chain("medium", "pulse_out_of_range") == ()


def test_default_chain_high_reaches_nurses_then_clinicians_then_everyone() -> None:
    tiers = default_chain("high", "nurse", [PAGER, DOCTOR, PHONES], timedelta(minutes=2))
    assert [(t.channels, t.roles, t.after) for t in tiers] == [
        (("pager", "phones"), ("nurse",), timedelta(0)),
        (("doctor", "phones"), ("clinician",), timedelta(minutes=2)),
        (("pager", "doctor", "phones"), ("nurse", "clinician", "admin"), timedelta(minutes=4)),
    ]


def test_default_chain_medium_goes_to_the_first_tier_only_and_low_nowhere() -> None:
    assert len(default_chain("medium", "nurse", [PAGER], timedelta(minutes=2))) == 1
    assert default_chain("low", "nurse", [PAGER], timedelta(minutes=2)) == ()


def test_a_clinicians_alert_starts_with_the_clinicians() -> None:
    tiers = default_chain("high", "clinician", [PAGER, DOCTOR, PHONES], timedelta(minutes=2))
    assert tiers[0].roles == ("clinician",)
    assert len(tiers) == 2


def test_first_tier_is_due_at_once_and_the_second_only_after_its_minutes() -> None:
    clock = FakeClock(T0)
    tiers = chain()
    state = ChainState(active=True, started_at=T0, fired={})
    assert due_tiers(state, tiers, clock(), TIMEOUT) == [0]
    state = ChainState(active=True, started_at=T0, fired={0: T0}, receipted=frozenset({0}))
    assert due_tiers(state, tiers, clock.advance(4.9), TIMEOUT) == []
    assert next_deadline(state, tiers, TIMEOUT) == T0 + timedelta(minutes=5)
    assert due_tiers(state, tiers, clock.advance(0.1), TIMEOUT) == [1]


def test_an_acknowledged_or_snoozed_alert_fires_nothing() -> None:
    state = ChainState(active=False, started_at=T0, fired={0: T0})
    assert due_tiers(state, chain(), T0 + timedelta(hours=1), TIMEOUT) == []
    assert next_deadline(state, chain(), TIMEOUT) is None


def test_no_receipt_within_the_timeout_brings_the_next_tier_forward() -> None:
    state = ChainState(active=True, started_at=T0, fired={0: T0})
    assert due_tiers(state, chain(), T0 + timedelta(seconds=59), TIMEOUT) == []
    assert next_deadline(state, chain(), TIMEOUT) == T0 + TIMEOUT
    assert due_tiers(state, chain(), T0 + TIMEOUT, TIMEOUT) == [1]


def test_a_receipt_in_time_keeps_the_next_tier_to_its_minutes() -> None:
    state = ChainState(active=True, started_at=T0, fired={0: T0}, receipted=frozenset({0}))
    assert due_tiers(state, chain(), T0 + timedelta(minutes=2), TIMEOUT) == []


def test_tiers_whose_times_all_passed_go_together_in_order() -> None:
    state = ChainState(active=True, started_at=T0, fired={})
    assert due_tiers(state, chain(), T0 + timedelta(minutes=10), TIMEOUT) == [0, 1]


def test_hurried_chain_sends_the_next_tier_now() -> None:
    state = ChainState(
        active=True, started_at=T0, fired={0: T0}, receipted=frozenset({0}), hurried=True
    )
    assert due_tiers(state, chain(), T0 + timedelta(seconds=1), TIMEOUT) == [1]


def test_alert_events_map_onto_chain_actions() -> None:
    assert action_of("alert", None) is Action.START
    assert action_of("alert_updated", "acknowledged") is Action.STOP
    assert action_of("alert_updated", "snoozed") is Action.STOP
    assert action_of("alert_updated", "resolved") is Action.STOP
    assert action_of("alert_updated", "worsened") is Action.RESTART
    assert action_of("alert_updated", "renotified") is Action.REPEAT
    assert action_of("alert_updated", "snooze_expired") is Action.RESUME
    assert action_of("alert_updated", "escalated") is Action.FOLLOW
    assert action_of("alert_updated", "latest_value") is Action.FOLLOW

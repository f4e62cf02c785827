"""The technical alarms' pure rules (issue #15): a silent cuff, a failing channel and
nobody watching, decided from what the shell saw and a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tests.clock import FakeClock
from vitalsd.domain import AlertKind, Priority
from vitalsd.technical import (
    CUFF_SILENT_CONDITION,
    channel_failing,
    channel_failing_condition,
    cuff_offline,
    cuff_silent,
    is_silent,
    nobody_watching,
    nobody_watching_due,
    silence_began,
    silence_deadline,
    unwatched_since,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TWENTY = timedelta(minutes=20)
MINUTE = timedelta(seconds=60)


def test_a_cuff_is_silent_once_nothing_was_heard_from_it_for_the_set_time() -> None:
    clock = FakeClock(T0)
    heard = T0
    clock.advance(19, seconds=59)
    assert not is_silent(heard, T0, clock.now, TWENTY)
    clock.advance(seconds=1)
    assert is_silent(heard, T0, clock.now, TWENTY)


def test_silence_counts_from_the_session_start_not_from_before_it() -> None:
    heard_yesterday = T0 - timedelta(days=1)
    assert silence_began(heard_yesterday, T0) == T0
    assert silence_deadline(heard_yesterday, T0, TWENTY) == T0 + TWENTY
    assert not is_silent(heard_yesterday, T0, T0 + timedelta(minutes=5), TWENTY)


def test_a_cuff_never_heard_from_counts_from_the_session_start() -> None:
    assert silence_deadline(None, T0, TWENTY) == T0 + TWENTY


def test_a_silent_cuff_is_a_medium_cuff_offline_finding_of_its_own_condition() -> None:
    finding = cuff_silent("AA:BB:CC:00:00:01", "Chair 3", T0, TWENTY)
    assert (finding.kind, finding.priority) == (AlertKind.CUFF_OFFLINE, Priority.MEDIUM)
    assert finding.condition == CUFF_SILENT_CONDITION != AlertKind.CUFF_OFFLINE.value
    assert "AA:BB:CC:00:00:01" in finding.message and "Chair 3" in finding.message
    assert "20 min" in finding.message


def test_a_failing_channel_is_a_medium_finding_one_per_channel() -> None:
    pager = channel_failing("ward-pager", "HTTP 503 three times")
    sms = channel_failing("sms", "timeout")
    assert (pager.kind, pager.priority) == (AlertKind.CHANNEL_FAILING, Priority.MEDIUM)
    assert pager.condition == channel_failing_condition("ward-pager") != sms.condition
    assert "ward-pager" in pager.message and "HTTP 503 three times" in pager.message


def test_a_channel_name_too_long_for_the_condition_column_is_cut_alike_both_ways() -> None:
    name = "x" * 200
    assert channel_failing(name, "down").condition == channel_failing_condition(name)
    assert len(channel_failing_condition(name)) <= 96


def test_the_unwatched_spell_begins_when_a_session_is_open_and_no_dashboard_is() -> None:
    assert unwatched_since(None, open_sessions=1, watching=0, now=T0) == T0
    later = T0 + timedelta(seconds=30)
    assert unwatched_since(T0, open_sessions=2, watching=0, now=later) == T0


def test_a_dashboard_or_no_open_session_ends_the_unwatched_spell() -> None:
    assert unwatched_since(T0, open_sessions=1, watching=1, now=T0) is None
    assert unwatched_since(T0, open_sessions=0, watching=0, now=T0) is None


def test_nobody_watching_falls_due_after_the_set_time_unwatched() -> None:
    clock = FakeClock(T0)
    clock.advance(seconds=59)
    assert not nobody_watching_due(T0, clock.now, MINUTE)
    clock.advance(seconds=1)
    assert nobody_watching_due(T0, clock.now, MINUTE)
    assert not nobody_watching_due(None, clock.now, MINUTE)


def test_nobody_watching_is_a_high_finding_naming_the_open_sessions() -> None:
    finding = nobody_watching(3, T0)
    assert (finding.kind, finding.priority) == (AlertKind.NOBODY_WATCHING, Priority.HIGH)
    assert finding.condition == "nobody_watching"
    assert "3 sessions are open" in finding.message and "09:00:00" in finding.message
    assert "1 session is open" in nobody_watching(1, T0).message


def test_a_cuff_alert_says_its_times_in_the_clinics_zone() -> None:
    """The ward reads the clinic's clock: 09:00 UTC is 10:00 in Vienna in March."""
    vienna = ZoneInfo("Europe/Vienna")
    silent = cuff_silent("AA:BB:CC:00:00:01", "Chair 3", T0, timedelta(minutes=20), vienna)
    assert "since 10:00:00 CET" in silent.message
    offline = cuff_offline("AA:BB:CC:00:00:01", "Chair 3", T0, "timeout", "Move it.", 4, vienna)
    assert "since 10:00:00 CET" in offline.message
    assert "since 09:00:00 UTC" in cuff_offline("AA", "Chair 3", T0, "timeout", "", 4).message

"""Technical alarms through the clinic: a known cuff of a chair in session that
advertises but cannot be connected (issue #18 item 4) or is silent, a failing
notification channel and nobody watching (issue #15)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest

from devices.events import CuffReachable, CuffUnreachable
from tests.storage.conftest import CUFF, NURSE, FakeClock, Ward
from tests.storage.test_clinic import ingest, start
from vitalsd.clinic import Clinic
from vitalsd.clinic.cuff_silence import SILENCE_RECHECK
from vitalsd.daemon import BleStatus, CuffEventSink
from vitalsd.dashboard_watch import DashboardWatch
from vitalsd.store.engine import create_engine
from vitalsd.views import AlertView

REFUSED = "the cuff refused pairing"
ADVICE = "Clear the cuff's pairing list (see its manual), then bring it close to the tablet."


def unreachable(clock: FakeClock) -> CuffUnreachable:
    return CuffUnreachable(
        address=CUFF.lower(),
        at=clock.now,
        since=clock.now - timedelta(seconds=75),
        attempts=4,
        reason=REFUSED,
        advice=ADVICE,
    )


async def test_an_unreachable_cuff_of_a_chair_in_session_raises_a_medium_cuff_offline_alert(
    ward: Ward, clock: FakeClock
) -> None:
    session = await start(ward)
    sink = CuffEventSink(ward.clinic, BleStatus("test"))
    await sink(unreachable(clock))
    await sink(unreachable(clock))  # the same spell again: one alert, never two
    (alert,) = await ward.clinic.list_alerts(session_id=session.id, kind="cuff_offline")
    assert (alert.priority, alert.state) == ("medium", "active")
    assert CUFF in alert.message and REFUSED in alert.message and ADVICE in alert.message


async def test_the_cuff_connecting_again_clears_its_alert(ward: Ward, clock: FakeClock) -> None:
    session = await start(ward)
    sink = CuffEventSink(ward.clinic, BleStatus("test"))
    await sink(unreachable(clock))
    clock.advance(1)
    await sink(CuffReachable(address=CUFF, at=clock.now))
    (alert,) = await ward.clinic.list_alerts(session_id=session.id, kind="cuff_offline")
    assert alert.state == "resolved"


async def test_an_unreachable_cuff_without_a_session_raises_nothing(
    ward: Ward, clock: FakeClock
) -> None:
    raised = await ward.clinic.cuff_unreachable(
        CUFF, at=clock.now, since=clock.now, attempts=2, reason=REFUSED, advice=ADVICE
    )
    assert raised is False
    assert await ward.clinic.list_alerts(kind="cuff_offline") == []


# -- the alarm system watching itself (issue #15) ----------------------------------------


async def ward_alerts(clinic: Clinic, kind: str) -> list[AlertView]:
    return [a for a in await clinic.list_alerts(kind=kind) if a.session_id is None]


async def test_a_failing_channel_raises_one_medium_alert_of_the_ward_per_channel(
    clinic: Clinic,
) -> None:
    await clinic.channel_failing("ward-pager", "HTTP 503, 3 times in a row")
    await clinic.channel_failing("ward-pager", "HTTP 503, 4 times in a row")  # still one
    await clinic.channel_failing("sms", "connection refused")
    alerts = await clinic.list_alerts(kind="channel_failing")
    assert sorted((a.priority, a.state, a.session_id, a.chair_id) for a in alerts) == [
        ("medium", "active", None, None),
        ("medium", "active", None, None),
    ]
    assert {"ward-pager" in a.message for a in alerts} == {True, False}


async def test_a_channel_failing_alert_is_stored_published_and_audited(clinic: Clinic) -> None:
    await clinic.channel_failing("ward-pager", "HTTP 503")
    (alert,) = await clinic.list_alerts(kind="channel_failing")
    (event,) = [e for e in await clinic.bus.stored_after(0) if e.type.value == "alert"]
    assert (event.data["id"], event.data["kind"]) == (alert.id, "channel_failing")
    assert event.data["session_id"] is None and event.data["chair_id"] is None
    (raised,) = await clinic.list_audit(entity="alert", entity_id=alert.id)
    assert raised.to_state == "active"


async def test_the_channel_recovering_resolves_its_alert_only(clinic: Clinic) -> None:
    await clinic.channel_failing("ward-pager", "HTTP 503")
    await clinic.channel_failing("sms", "refused")
    seq = await clinic.bus.last_seq()
    await clinic.channel_recovered("ward-pager")
    await clinic.channel_recovered("ward-pager")  # again: nothing more happens
    states = {
        a.message.split()[2]: a.state for a in await clinic.list_alerts(kind="channel_failing")
    }
    assert states == {"ward-pager": "resolved", "sms": "active"}
    (update,) = await clinic.bus.stored_after(seq)
    assert (update.type.value, update.data["state"]) == ("alert_updated", "resolved")


async def test_a_channel_that_recovers_without_an_alert_changes_nothing(clinic: Clinic) -> None:
    seq = await clinic.bus.last_seq()
    await clinic.channel_recovered("ward-pager")
    assert await clinic.bus.stored_after(seq) == []


async def test_nobody_watching_is_one_high_alert_of_the_ward_until_somebody_watches(
    ward: Ward, clock: FakeClock
) -> None:
    await start(ward)
    await ward.clinic.nobody_watching(1, clock.now)
    clock.advance(seconds=10)
    await ward.clinic.nobody_watching(1, clock.now)  # idempotent
    (alert,) = await ward_alerts(ward.clinic, "nobody_watching")
    assert (alert.priority, alert.state, alert.chair_id) == ("high", "active", None)
    snapshot = await ward.clinic.snapshot()
    assert alert.id in [a.id for a in snapshot.active_alerts]
    clock.advance(seconds=10)
    await ward.clinic.somebody_watching()
    (alert,) = await ward_alerts(ward.clinic, "nobody_watching")
    # Not latched: a screen showing the ward is exactly what it asked for.
    assert (alert.state, alert.resolution_note) == ("resolved", "a dashboard is connected")


async def test_a_nobody_watching_alert_renotifies_until_acknowledged(
    ward: Ward, clock: FakeClock
) -> None:
    await start(ward)
    await ward.clinic.nobody_watching(1, clock.now)
    clock.advance(2, seconds=1)
    seq = await ward.clinic.bus.last_seq()
    await ward.clinic.apply_time()
    updates = [e.data for e in await ward.clinic.bus.stored_after(seq)]
    assert any(u["kind"] == "nobody_watching" and u.get("renotify") for u in updates)


# -- the dashboard watch (vitalsd.dashboard_watch) on a real clinic ----------------------


class Screens:
    """How many dashboards the watch is told are connected."""

    def __init__(self) -> None:
        self.connected = 0

    async def __call__(self) -> int:
        return self.connected


def dashboard_watch(clinic: Clinic, clock: FakeClock, screens: Screens) -> DashboardWatch:
    return DashboardWatch(clinic, screens, asyncio.Event(), after=timedelta(seconds=60), now=clock)


async def test_the_watch_raises_nobody_watching_after_the_set_time_without_a_dashboard(
    ward: Ward, clock: FakeClock
) -> None:
    screens = Screens()
    watch = dashboard_watch(ward.clinic, clock, screens)
    await start(ward)
    wait = await watch.look()
    assert wait == timedelta(seconds=10)  # the next look, before the alert falls due
    clock.advance(seconds=59)
    assert await watch.look() == timedelta(seconds=1)
    assert await ward_alerts(ward.clinic, "nobody_watching") == []
    clock.advance(seconds=1)
    await watch.look()
    (alert,) = await ward_alerts(ward.clinic, "nobody_watching")
    assert (alert.priority, alert.state) == ("high", "active")
    assert "1 session is open" in alert.message


async def test_the_watch_resolves_nobody_watching_when_a_dashboard_connects(
    ward: Ward, clock: FakeClock
) -> None:
    screens = Screens()
    watch = dashboard_watch(ward.clinic, clock, screens)
    await start(ward)
    await watch.look()
    clock.advance(seconds=61)
    await watch.look()
    screens.connected = 1
    await watch.look()
    (alert,) = await ward_alerts(ward.clinic, "nobody_watching")
    assert alert.state == "resolved"


async def test_the_watch_raises_nothing_without_an_open_session(
    ward: Ward, clock: FakeClock
) -> None:
    watch = dashboard_watch(ward.clinic, clock, Screens())
    await watch.look()
    clock.advance(10)
    await watch.look()
    assert await ward.clinic.list_alerts(kind="nobody_watching") == []


async def test_a_dashboard_that_left_and_came_back_in_time_raises_nothing(
    ward: Ward, clock: FakeClock
) -> None:
    screens = Screens()
    watch = dashboard_watch(ward.clinic, clock, screens)
    await start(ward)
    await watch.look()
    clock.advance(seconds=50)
    screens.connected = 1
    await watch.look()
    screens.connected = 0
    clock.advance(seconds=50)
    await watch.look()  # a new spell: 0 s of it so far, not 100
    assert await ward.clinic.list_alerts(kind="nobody_watching") == []


# -- cuff_offline, second cause: the cuff of a chair in session is silent ------------------

SILENT_AFTER = timedelta(minutes=20)


@pytest.fixture
async def quiet_ward(database_url: str, clock: FakeClock) -> AsyncIterator[Ward]:
    """The usual ward on a clinic with the silent-cuff rule on (20 minutes)."""
    clinic = Clinic(create_engine(database_url), clock=clock, cuff_silent_after=SILENT_AFTER)
    try:
        patient = await clinic.create_patient("MRN-001", "J. D.", date(1980, 6, 1), by=NURSE)
        chair = await clinic.create_chair("Chair 1", by=NURSE)
        await clinic.assign_cuff(chair.id, CUFF, by=NURSE)
        yield Ward(clinic, patient.id, chair.id)
    finally:
        await clinic.close()


async def cuff_alerts(ward: Ward, session_id: int) -> list[AlertView]:
    return await ward.clinic.list_alerts(session_id=session_id, kind="cuff_offline")


async def test_a_cuff_silent_for_the_set_time_raises_cuff_offline(
    quiet_ward: Ward, clock: FakeClock
) -> None:
    ward = quiet_ward
    await ward.clinic.device_seen(CUFF, at=clock.now)
    session = await start(ward)
    assert await ward.clinic.next_deadline() is not None
    assert await ward.clinic.next_deadline() <= clock.now + SILENT_AFTER  # type: ignore[operator]
    clock.advance(19)
    await ward.clinic.apply_time()
    assert await cuff_alerts(ward, session.id) == []
    clock.advance(1)
    await ward.clinic.apply_time()
    await ward.clinic.apply_time()  # again: one alert, never two
    (alert,) = await cuff_alerts(ward, session.id)
    assert (alert.priority, alert.state, alert.chair_id) == ("medium", "active", ward.chair_id)
    assert CUFF in alert.message and "nothing heard" in alert.message


async def test_a_silent_cuff_heard_from_again_clears_its_alert(
    quiet_ward: Ward, clock: FakeClock
) -> None:
    ward = quiet_ward
    session = await start(ward)
    clock.advance(21)
    await ward.clinic.apply_time()
    (alert,) = await cuff_alerts(ward, session.id)
    # Still silent: the rule looks again soon, since a sign of life wakes no timer.
    assert await ward.clinic.next_deadline() == clock.now + SILENCE_RECHECK
    clock.advance(seconds=5)
    await ward.clinic.device_seen(CUFF, at=clock.now)  # it advertises again
    clock.advance(seconds=30)
    await ward.clinic.apply_time()
    (alert,) = await cuff_alerts(ward, session.id)
    assert (alert.state, alert.resolution_note) == ("resolved", "the cuff was heard from again")


async def test_a_connected_cuff_is_never_silent(quiet_ward: Ward, clock: FakeClock) -> None:
    ward = quiet_ward
    session = await start(ward)
    await ward.clinic.update_device(CUFF, at=clock.now, connection_state="connected")
    clock.advance(45)
    await ward.clinic.apply_time()
    assert await cuff_alerts(ward, session.id) == []


async def test_a_silent_cuff_already_unreachable_gets_no_second_alert(
    quiet_ward: Ward, clock: FakeClock
) -> None:
    ward = quiet_ward
    session = await start(ward)
    sink = CuffEventSink(ward.clinic, BleStatus("test"))
    await sink(unreachable(clock))
    clock.advance(30)
    await ward.clinic.apply_time()
    (alert,) = await cuff_alerts(ward, session.id)
    assert REFUSED in alert.message


async def test_an_unreachable_cuff_replaces_its_silent_alert(
    quiet_ward: Ward, clock: FakeClock
) -> None:
    ward = quiet_ward
    session = await start(ward)
    clock.advance(21)
    await ward.clinic.apply_time()
    sink = CuffEventSink(ward.clinic, BleStatus("test"))
    await sink(unreachable(clock))
    alerts = await cuff_alerts(ward, session.id)
    assert sorted((a.state, REFUSED in a.message) for a in alerts) == [
        ("active", True),
        ("resolved", False),
    ]


async def test_the_cuff_connecting_clears_a_silent_alert_at_once(
    quiet_ward: Ward, clock: FakeClock
) -> None:
    ward = quiet_ward
    session = await start(ward)
    clock.advance(21)
    await ward.clinic.apply_time()
    await ward.clinic.cuff_reachable(CUFF, at=clock.now)
    (alert,) = await cuff_alerts(ward, session.id)
    assert alert.state == "resolved"


async def test_a_cuff_without_a_session_is_never_silent(quiet_ward: Ward, clock: FakeClock) -> None:
    ward = quiet_ward
    clock.advance(60)
    await ward.clinic.apply_time()
    assert await ward.clinic.list_alerts(kind="cuff_offline") == []


async def test_a_reading_from_the_cuff_counts_as_hearing_from_it(
    quiet_ward: Ward, clock: FakeClock
) -> None:
    ward = quiet_ward
    await ward.clinic.device_seen(CUFF, at=clock.now)
    session = await start(ward)
    clock.advance(15)
    await ingest(ward.clinic, clock)  # the device row keeps its last sighting
    clock.advance(6)
    await ward.clinic.apply_time()
    assert await cuff_alerts(ward, session.id) == []
    clock.advance(15)
    await ward.clinic.apply_time()
    (alert,) = await cuff_alerts(ward, session.id)
    assert f"since {(clock.now - timedelta(minutes=21)):%H:%M:%S}" in alert.message

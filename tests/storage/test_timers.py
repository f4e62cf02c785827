"""The timer loop sleeps until the next deadline the rules name, or until woken."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from tests.clock import RunningClock
from tests.storage.conftest import CLINICIAN, CUFF, NURSE, T0, FakeClock, Ward
from tests.storage.cuff import measurement
from vitalsd.clinic import Clinic
from vitalsd.cuff_readings import cuff_reading
from vitalsd.store.events import EventType, Subscription

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def timers(clinic: Clinic) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(clinic.run_timers())
    yield task
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def first_of(subscription: Subscription, kind: EventType) -> dict[str, object]:
    async for event in subscription:
        if event.type is kind:
            return event.data
    raise AssertionError("subscription ended")


async def dosed_session(ward: Ward) -> int:
    session = await ward.clinic.start_session(
        ward.patient_id, ward.chair_id, by=CLINICIAN, course_session=1
    )
    m = measurement()
    await ward.clinic.ingest_cuff_measurement(CUFF, cuff_reading(m), ward.clinic.now(), bytes(m))
    await ward.clinic.record_dose(session.id, drug="ketamine", amount_mg=50, route="IM", by=NURSE)
    return session.id


async def test_woken_timer_loop_applies_what_the_clock_made_due(
    ward: Ward, clock: FakeClock, timers: asyncio.Task[None]
) -> None:
    await dosed_session(ward)
    async with ward.clinic.bus.subscribe() as subscription:
        clock.advance(31)
        ward.clinic.wake()
        data = await asyncio.wait_for(first_of(subscription, EventType.CHECK_OVERDUE), 20)
    assert data["kind"] == "post_dose"


async def test_timer_loop_wakes_by_itself_at_the_next_window_edge(ward: Ward) -> None:
    running = RunningClock(T0)
    ward.clinic.clock = running
    await dosed_session(ward)
    opens = await ward.clinic.next_deadline()
    assert opens is not None
    running.set(opens - timedelta(seconds=0.3))
    task = asyncio.create_task(ward.clinic.run_timers())
    try:
        async with ward.clinic.bus.subscribe() as subscription:
            data = await asyncio.wait_for(first_of(subscription, EventType.CHECK_DUE), 20)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert data["kind"] == "post_dose"


async def test_escalation_reaches_subscribers_through_the_timer_loop(
    ward: Ward, clock: FakeClock, timers: asyncio.Task[None]
) -> None:
    session = await ward.clinic.start_session(ward.patient_id, ward.chair_id, by=CLINICIAN)
    m = measurement(188, 112)
    await ward.clinic.ingest_cuff_measurement(CUFF, cuff_reading(m), clock.now, bytes(m))
    async with ward.clinic.bus.subscribe() as subscription:
        clock.advance(2)
        ward.clinic.wake()
        while True:
            data = await asyncio.wait_for(first_of(subscription, EventType.ALERT_UPDATED), 20)
            if data.get("escalated_at"):
                break
    assert (data["session_id"], data["addressed_to"]) == (session.id, "clinician")


async def updates_until(subscription: Subscription, reason: str) -> list[dict[str, object]]:
    """The `alert_updated` events up to the first with `reason`."""
    seen: list[dict[str, object]] = []
    while True:
        data = await asyncio.wait_for(first_of(subscription, EventType.ALERT_UPDATED), 20)
        seen.append(data)
        if data.get("reason") == reason:
            return seen


async def test_finding_9_an_unacknowledged_high_alert_renotifies_every_two_minutes(
    ward: Ward, clock: FakeClock
) -> None:
    """Escalation happened once and nothing re-notified (#13 finding 9): now, after the
    escalation, it sounds again every 2 minutes until acknowledged, each an
    `alert_updated` that says why."""
    await ward.clinic.start_session(ward.patient_id, ward.chair_id, by=CLINICIAN)
    m = measurement(188, 112)
    await ward.clinic.ingest_cuff_measurement(CUFF, cuff_reading(m), clock.now, bytes(m))
    async with ward.clinic.bus.subscribe() as subscription:
        clock.advance(2)
        await ward.clinic.apply_time()
        (escalated,) = await updates_until(subscription, "escalated")
        assert escalated["renotify"] is True
        renotified = []
        for _ in range(2):
            clock.advance(2)
            await ward.clinic.apply_time()
            renotified.append((await updates_until(subscription, "renotified"))[-1])
    assert [r["renotify"] for r in renotified] == [True, True]
    (alert,) = await ward.clinic.list_alerts(kind="severe_hypertension")
    await ward.clinic.acknowledge_alert(alert.id, by=NURSE)
    clock.advance(5)
    await ward.clinic.apply_time()
    trail = await ward.clinic.list_audit(entity="alert", entity_id=alert.id)
    assert [a.action for a in trail] == [
        "raised",
        "escalated",
        "renotified",
        "renotified",
        "acknowledged",
    ]


async def test_finding_8_latching_and_return_are_announced_with_their_reason(
    ward: Ward, clock: FakeClock
) -> None:
    await ward.clinic.start_session(ward.patient_id, ward.chair_id, by=CLINICIAN)
    async with ward.clinic.bus.subscribe() as subscription:
        for systolic, diastolic in ((188, 112), (116, 78), (186, 110)):
            m = measurement(systolic, diastolic)
            await ward.clinic.ingest_cuff_measurement(CUFF, cuff_reading(m), clock.now, bytes(m))
            clock.advance(1)
        cleared = (await updates_until(subscription, "condition_cleared"))[-1]
        returned = (await updates_until(subscription, "condition_returned"))[-1]
        m = measurement(118, 76)
        await ward.clinic.ingest_cuff_measurement(CUFF, cuff_reading(m), clock.now, bytes(m))
        await updates_until(subscription, "condition_cleared")
        await ward.clinic.acknowledge_alert(int(str(returned["id"])), by=NURSE)
        settled = await updates_until(subscription, "resolved")
    ours = [e["reason"] for e in settled if e["id"] == returned["id"]]
    assert ours[-2:] == ["acknowledged", "resolved"]
    assert settled[-1]["resolution_note"] == "acknowledged after its condition cleared"
    assert cleared["condition_cleared_at"] is not None
    assert (returned["condition_cleared_at"], returned["state"]) == (None, "active")

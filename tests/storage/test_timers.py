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

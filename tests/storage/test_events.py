"""Events: stored in the change's transaction, numbered gaplessly, replayed then live."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from tests.storage.conftest import CLINICIAN, CUFF, NURSE, FakeClock, Ward, emptied
from tests.storage.cuff import measurement
from vitalsd.clinic import Clinic
from vitalsd.cuff_readings import cuff_reading
from vitalsd.errors import DosingHoldActive
from vitalsd.store.engine import create_engine, session_factory
from vitalsd.store.events import Event, EventBus, EventType, SubscriberOverflow


async def test_sequence_increases_by_one_per_stored_event(ward: Ward) -> None:
    await ward.clinic.start_session(ward.patient_id, ward.chair_id, by=CLINICIAN)
    events = await ward.clinic.bus.stored_after(0)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


async def test_refused_change_stores_no_event_and_leaves_no_gap(
    ward: Ward, clock: FakeClock
) -> None:
    session = await ward.clinic.start_session(ward.patient_id, ward.chair_id, by=CLINICIAN)
    m = measurement(170, 104)
    await ward.clinic.ingest_cuff_measurement(CUFF, cuff_reading(m), clock.now, bytes(m))
    before = await ward.clinic.bus.last_seq()
    with pytest.raises(DosingHoldActive):
        await ward.clinic.record_dose(
            session.id, drug="ketamine", amount_mg=50, route="IM", by=NURSE
        )
    await ward.clinic.record_side_effect(session.id, effect="anxiety", severity=1, by=NURSE)
    after = await ward.clinic.bus.stored_after(before)
    assert [e.seq for e in after] == [before + 1]


async def test_reading_event_carries_the_interface_fields(ward: Ward, clock: FakeClock) -> None:
    await ward.clinic.start_session(ward.patient_id, ward.chair_id, by=CLINICIAN)
    m = measurement(128, 82)
    await ward.clinic.ingest_cuff_measurement(CUFF, cuff_reading(m), clock.now, bytes(m))
    (event,) = [e for e in await ward.clinic.bus.stored_after(0) if e.type is EventType.READING]
    assert {
        "id",
        "session_id",
        "chair_id",
        "patient_id",
        "systolic",
        "diastolic",
        "mean_arterial_pressure",
        "pulse_rate",
        "measured_at",
        "source",
        "flags",
        "category",
    } <= set(event.data)
    assert event.as_json()["type"] == "reading" and event.as_json()["at"].endswith("+00:00")


async def test_alert_event_carries_the_interface_fields(ward: Ward, clock: FakeClock) -> None:
    await ward.clinic.start_session(ward.patient_id, ward.chair_id, by=CLINICIAN)
    m = measurement(186, 100)
    await ward.clinic.ingest_cuff_measurement(CUFF, cuff_reading(m), clock.now, bytes(m))
    alerts = [e for e in await ward.clinic.bus.stored_after(0) if e.type is EventType.ALERT]
    assert alerts and all(
        {
            "id",
            "priority",
            "kind",
            "message",
            "state",
            "session_id",
            "chair_id",
            "reading_id",
            "check_id",
        }
        <= set(e.data)
        for e in alerts
    )


async def next_events(subscription: object, count: int) -> list[Event]:
    got: list[Event] = []
    async for event in subscription:  # type: ignore[attr-defined]
        got.append(event)
        if len(got) == count:
            break
    return got


async def test_subscriber_gets_stored_events_after_since_then_live_without_gap_or_duplicate(
    clinic: Clinic,
) -> None:
    for level in range(60, 65):
        await clinic.update_device(CUFF, battery_percent=level)
    subscription = clinic.bus.subscribe(since=2)
    for level in range(40, 43):
        await clinic.update_device(CUFF, battery_percent=level)
    async with subscription:
        got = await asyncio.wait_for(next_events(subscription, 6), 10)
    assert [e.seq for e in got] == [3, 4, 5, 6, 7, 8]


async def test_subscriber_without_since_gets_only_live_events(clinic: Clinic) -> None:
    await clinic.update_device(CUFF, battery_percent=90)
    async with clinic.bus.subscribe() as subscription:
        await clinic.update_device(CUFF, battery_percent=89)
        (event,) = await asyncio.wait_for(next_events(subscription, 1), 10)
    assert event.data["battery_percent"] == 89


async def test_a_commits_events_reach_one_subscriber_together_before_the_next(
    ward: Ward, clock: FakeClock
) -> None:
    """A severe reading and its alert go to each tablet back to back (the alert is not
    held until the reading has gone to every tablet)."""
    await ward.clinic.start_session(ward.patient_id, ward.chair_id, by=CLINICIAN)
    delivered: list[tuple[str, EventType]] = []
    subscriptions = [ward.clinic.bus.subscribe() for _ in range(2)]
    waiting = []
    for name, subscription in zip("AB", subscriptions, strict=True):

        def take(event: Event, name: str = name) -> bool:
            delivered.append((name, event.type))
            return True

        subscription.direct = take
        waiting.append(asyncio.ensure_future(subscription.__anext__()))
    for _ in range(3):
        await asyncio.sleep(0)  # both readers wait with nothing queued
    severe = measurement(systolic=190, diastolic=112)
    await ward.clinic.ingest_cuff_measurement(CUFF, cuff_reading(severe), clock.now, bytes(severe))
    for future in waiting:
        future.cancel()
    for subscription in subscriptions:
        subscription.close()
    names = [name for name, _ in delivered]
    second = names.index("B" if names[0] == "A" else "A")
    to_first, to_second = delivered[:second], delivered[second:]
    assert len({name for name, _ in to_first}) == 1 and len({n for n, _ in to_second}) == 1
    assert [t for _, t in to_first] == [t for _, t in to_second]
    assert {EventType.READING, EventType.ALERT} <= {t for _, t in to_first}


async def test_cuff_pressure_is_published_live_without_storage_or_seq(clinic: Clinic) -> None:
    async with clinic.bus.subscribe() as subscription:
        clinic.publish_cuff_pressure(CUFF, 142.0, clinic.now())
        (event,) = await asyncio.wait_for(next_events(subscription, 1), 10)
    assert (event.type, event.seq) == (EventType.CUFF_PRESSURE, None)
    assert await clinic.bus.stored_after(0) == []


async def test_slow_subscriber_is_told_it_overflowed_and_where_to_resume(
    clinic: Clinic,
) -> None:
    small = EventBus(session_factory(clinic.engine), queue_size=2)
    clinic.bus = small
    subscription = small.subscribe()
    for level in (50, 51, 52, 53):
        await clinic.update_device(CUFF, battery_percent=level)
    delivered = [await subscription.__anext__(), await subscription.__anext__()]
    with pytest.raises(SubscriberOverflow) as caught:
        await subscription.__anext__()
    assert caught.value.last_seq == delivered[-1].seq


async def test_concurrent_writers_get_distinct_consecutive_sequence_numbers(
    clinic: Clinic,
) -> None:
    patients = [
        clinic.create_patient(f"MRN-{i}", f"P{i}", date(1980, 1, 1), by=NURSE) for i in range(8)
    ]
    chairs = [clinic.create_chair(f"Chair {i}", by=NURSE) for i in range(8)]
    await asyncio.gather(*patients, *chairs)
    await asyncio.gather(
        *(clinic.update_device(f"AA:00:00:00:01:{i:02X}", battery_percent=i) for i in range(8))
    )
    seqs = [e.seq for e in await clinic.bus.stored_after(0)]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) == 8


async def test_daemons_sharing_postgresql_see_each_others_events_in_order(
    request: pytest.FixtureRequest,
) -> None:
    url = await emptied(str(request.getfixturevalue("migrated_postgres_url")))
    writer, follower = Clinic(create_engine(url)), Clinic(create_engine(url))
    await follower.start()
    try:
        async with follower.bus.subscribe() as subscription:
            await writer.update_device(CUFF, battery_percent=70)
            await follower.update_device(CUFF, battery_percent=69)
            await writer.update_device(CUFF, battery_percent=68)
            got = await asyncio.wait_for(next_events(subscription, 3), 20)
    finally:
        await writer.close()
        await follower.close()
    assert [(e.seq, e.data["battery_percent"]) for e in got] == [(1, 70), (2, 69), (3, 68)]

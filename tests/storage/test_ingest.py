"""Ingest on a real database: exactly once by the cuff's own key, the writer's memory
never stale, the writer never waiting for a reader connection, a snapshot's cost."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from devices.bps import BloodPressureMeasurement
from tests.storage.conftest import CLINICIAN, CUFF, NURSE, FakeClock, Ward, emptied
from tests.storage.cuff import error_frame, measurement
from vitalsd.clinic import Clinic
from vitalsd.cuff_readings import cuff_reading
from vitalsd.errors import Conflict, InvalidInput
from vitalsd.settings import Settings
from vitalsd.store.engine import create_engine, migrate
from vitalsd.views import IngestResult, SessionView

OTHER_CUFF = "AA:BB:CC:00:00:02"


async def ingest(
    clinic: Clinic,
    clock: FakeClock,
    m: BloodPressureMeasurement | None = None,
    *,
    address: str = CUFF,
    cuff_key: str | None = None,
) -> IngestResult:
    m = m or measurement()
    return await clinic.ingest_cuff_measurement(
        address, cuff_reading(m), clock.now, bytes(m), cuff_key=cuff_key
    )


async def start(ward: Ward, chair_id: int | None = None) -> SessionView:
    return await ward.clinic.start_session(ward.patient_id, chair_id or ward.chair_id, by=CLINICIAN)


async def alert_states(clinic: Clinic, session_id: int, kind: str) -> list[str]:
    return [a.state for a in await clinic.list_alerts(session_id=session_id, kind=kind)]


async def stored_event_count(clinic: Clinic) -> int:
    return len(await clinic.bus.stored_after(0))


# -- exactly once, keyed on what the cuff reported ----------------------------------------


async def test_record_redelivered_with_its_cuff_key_is_stored_once_whatever_its_corrected_time(
    ward: Ward, clock: FakeClock
) -> None:
    await start(ward)
    first = await ingest(ward.clinic, clock, cuff_key="seq:4")
    clock.advance(0.5)  # a restarted daemon corrects the cuff's clock differently
    again = await ingest(ward.clinic, clock, cuff_key="seq:4")
    assert (again.duplicate, again.reading.id) == (True, first.reading.id)
    assert len(await ward.clinic.list_readings(device_address=CUFF)) == 1


async def test_redelivered_severe_record_emits_no_event_and_raises_no_second_alert(
    ward: Ward, clock: FakeClock
) -> None:
    session = await start(ward)
    await ingest(ward.clinic, clock, measurement(186, 112), cuff_key="seq:7")
    (severe,) = await ward.clinic.list_alerts(session_id=session.id, kind="severe_hypertension")
    await ward.clinic.resolve_alert(severe.id, "seen", by=NURSE)
    events_before = await stored_event_count(ward.clinic)
    clock.advance(1)
    await ingest(ward.clinic, clock, measurement(186, 112), cuff_key="seq:7")
    assert await stored_event_count(ward.clinic) == events_before
    assert await alert_states(ward.clinic, session.id, "severe_hypertension") == ["resolved"]


async def test_same_cuff_key_from_another_cuff_is_another_reading(
    ward: Ward, clock: FakeClock
) -> None:
    await ingest(ward.clinic, clock, cuff_key="seq:0")
    other = await ingest(ward.clinic, clock, address=OTHER_CUFF, cuff_key="seq:0")
    assert not other.duplicate


async def test_without_cuff_key_the_corrected_time_and_user_identify_the_record(
    ward: Ward, clock: FakeClock
) -> None:
    first = await ingest(ward.clinic, clock)
    clock.advance(1)
    later = await ingest(ward.clinic, clock)
    assert (later.duplicate, later.reading.id != first.reading.id) == (False, True)


async def test_error_frame_redelivered_with_its_cuff_key_is_stored_once(
    ward: Ward, clock: FakeClock
) -> None:
    await start(ward)
    await ingest(ward.clinic, clock, error_frame(), cuff_key="seq:9")
    clock.advance(1)
    again = await ingest(ward.clinic, clock, error_frame(), cuff_key="seq:9")
    assert again.duplicate and len(await ward.clinic.list_readings(device_address=CUFF)) == 1


async def test_failed_measurement_reported_twice_with_its_cuff_key_is_stored_once(
    ward: Ward, clock: FakeClock
) -> None:
    first = await ward.clinic.record_measurement_failed(
        CUFF, clock.now, "cuff error", cuff_key="fail:1"
    )
    clock.advance(1)
    again = await ward.clinic.record_measurement_failed(
        CUFF, clock.now, "cuff error", cuff_key="fail:1"
    )
    events = [e.type.value for e in await ward.clinic.bus.stored_after(0)]
    assert (again.id, events.count("measurement_failed")) == (first.id, 1)


async def test_empty_cuff_key_is_refused(ward: Ward, clock: FakeClock) -> None:
    with pytest.raises(InvalidInput, match="cuff_key"):
        await ingest(ward.clinic, clock, cuff_key="")


# -- the writer's memory follows every change ----------------------------------------------


async def test_cuff_moved_to_a_chair_in_session_files_its_next_reading_there(
    ward: Ward, clock: FakeClock
) -> None:
    chair = await ward.clinic.create_chair("Chair 2", by=NURSE)
    session = await start(ward, chair.id)
    assert not (await ingest(ward.clinic, clock)).attached  # chair 1 holds the cuff
    await ward.clinic.assign_cuff(chair.id, CUFF, by=NURSE)
    clock.advance(1)
    result = await ingest(ward.clinic, clock)
    assert (result.attached, result.reading.session_id) == (True, session.id)


async def test_cuff_unassigned_mid_session_stores_its_next_reading_unattached(
    ward: Ward, clock: FakeClock
) -> None:
    await start(ward)
    assert (await ingest(ward.clinic, clock)).attached
    # Issue #13 finding 7: unbinding a chair in session needs confirm and a reason.
    with pytest.raises(Conflict):
        await ward.clinic.assign_cuff(ward.chair_id, None, by=NURSE)
    await ward.clinic.assign_cuff(
        ward.chair_id, None, by=NURSE, confirm=True, reason="cuff taken off the patient"
    )
    clock.advance(1)
    assert not (await ingest(ward.clinic, clock)).attached


async def test_reading_after_the_session_closed_is_stored_unattached(
    ward: Ward, clock: FakeClock
) -> None:
    session = await start(ward)
    await ingest(ward.clinic, clock)
    clock.advance(1)
    await ward.clinic.close_session(session.id, by=CLINICIAN, reason="patient left")
    clock.advance(1)
    assert not (await ingest(ward.clinic, clock)).attached


async def test_reading_after_a_dose_is_judged_against_the_baseline(
    ward: Ward, clock: FakeClock
) -> None:
    session = await start(ward)
    await ingest(ward.clinic, clock, measurement(120, 80))
    clock.advance(2)
    await ward.clinic.record_dose(
        session.id, drug="ketamine", amount_mg=35, route="IM", by=CLINICIAN
    )
    clock.advance(5)
    await ingest(ward.clinic, clock, measurement(165, 85))
    alerts = await ward.clinic.list_alerts(session_id=session.id)
    assert {a.kind for a in alerts} == {"rise_over_baseline"}


async def test_severe_reading_after_its_alert_was_resolved_raises_a_new_one(
    ward: Ward, clock: FakeClock
) -> None:
    session = await start(ward)
    await ingest(ward.clinic, clock, measurement(186, 112))
    (alert,) = await ward.clinic.list_alerts(session_id=session.id, kind="severe_hypertension")
    await ward.clinic.resolve_alert(alert.id, "repeated by hand: fine", by=NURSE)
    clock.advance(2)
    await ingest(ward.clinic, clock, measurement(188, 114))
    states = await alert_states(ward.clinic, session.id, "severe_hypertension")
    assert sorted(states) == ["active", "resolved"]


async def test_alert_acknowledged_then_cleared_by_a_reading_is_announced_acknowledged(
    ward: Ward, clock: FakeClock
) -> None:
    session = await start(ward)
    await ingest(ward.clinic, clock, measurement(186, 112))
    (severe,) = await ward.clinic.list_alerts(session_id=session.id, kind="severe_hypertension")
    await ward.clinic.acknowledge_alert(severe.id, by=NURSE)
    clock.advance(2)
    await ingest(ward.clinic, clock, measurement(120, 80))
    updates = [
        e.data
        for e in await ward.clinic.bus.stored_after(0)
        if e.type.value == "alert_updated" and e.data["id"] == severe.id
    ]
    assert (updates[-1]["state"], updates[-1]["acknowledged_by"]) == ("resolved", NURSE.username)


@asynccontextmanager
async def events_refused(clinic: Clinic) -> AsyncIterator[None]:
    """The database refuses to store events: every write transaction fails at its end,
    after the rules ran (a real failure, made by a trigger)."""
    async with clinic.engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            await connection.execute(
                text(
                    "CREATE TRIGGER refuse_events BEFORE INSERT ON events "
                    "BEGIN SELECT RAISE(ABORT, 'events refused'); END"
                )
            )
        else:
            await connection.execute(
                text(
                    "CREATE FUNCTION refuse_events() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'events refused'; END; $$ LANGUAGE plpgsql"
                )
            )
            await connection.execute(
                text(
                    "CREATE TRIGGER refuse_events BEFORE INSERT ON events "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_events()"
                )
            )
    try:
        yield
    finally:
        async with clinic.engine.begin() as connection:
            if connection.dialect.name == "sqlite":
                await connection.execute(text("DROP TRIGGER refuse_events"))
            else:
                await connection.execute(text("DROP TRIGGER refuse_events ON events"))
                await connection.execute(text("DROP FUNCTION refuse_events()"))


async def test_ingest_rolled_back_leaves_no_trace_in_what_the_next_one_sees(
    ward: Ward, clock: FakeClock
) -> None:
    session = await start(ward)
    await ingest(ward.clinic, clock)  # the session's state is kept from here on
    clock.advance(2)
    async with events_refused(ward.clinic):
        with pytest.raises(DBAPIError, match="events refused"):
            await ingest(ward.clinic, clock, measurement(186, 112))
    result = await ingest(ward.clinic, clock, measurement(186, 112))
    assert not result.duplicate
    assert await alert_states(ward.clinic, session.id, "severe_hypertension") == ["active"]


async def test_session_closed_by_another_process_is_seen_by_the_next_ingest(
    ward: Ward, clock: FakeClock, database_url: str
) -> None:
    session = await start(ward)
    await ingest(ward.clinic, clock)
    other = Clinic(create_engine(database_url), clock=clock)
    try:
        clock.advance(1)
        await other.close_session(session.id, by=CLINICIAN, reason="closed at the desk")
    finally:
        await other.close()
    clock.advance(1)
    assert not (await ingest(ward.clinic, clock)).attached


# -- the writer does not wait for readers --------------------------------------------------


@asynccontextmanager
async def every_reader_connection_held(
    database_url: str, clock: FakeClock
) -> AsyncIterator[Clinic]:
    """A clinic whose readers' pool (one connection, no overflow) is all checked out."""
    readers = create_engine(database_url, pool_size=1, max_overflow=0, pool_timeout=2)
    clinic = Clinic(readers, clock=clock)
    try:
        async with readers.connect() as held:
            await held.execute(text("SELECT 1"))
            yield clinic
    finally:
        await clinic.close()


async def test_ingest_completes_while_every_reader_connection_is_held(
    database_url: str, clock: FakeClock
) -> None:
    async with every_reader_connection_held(database_url, clock) as clinic:
        result = await ingest(clinic, clock)
    assert not result.duplicate


async def test_cuff_status_is_stored_while_every_reader_connection_is_held(
    database_url: str, clock: FakeClock
) -> None:
    async with every_reader_connection_held(database_url, clock) as clinic:
        await clinic.update_device(CUFF, connection_state="connected")
        clock.advance(0.1)
        seen_again = await clinic.update_device(CUFF, connection_state="connected")
    assert seen_again.connection_state == "connected"


# -- the snapshot's cost -------------------------------------------------------------------


@contextmanager
def counted_statements(clinic: Clinic) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    engine = clinic.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def add_chairs_in_session(clinic: Clinic, clock: FakeClock, first: int, count: int) -> None:
    """Chairs with a cuff, an open session, readings (one severe: an alert) and a dose."""
    for i in range(first, first + count):
        patient = await clinic.create_patient(f"MRN-{i}", f"P {i}", date(1970, 1, 1), by=NURSE)
        chair = await clinic.create_chair(f"Chair {i}", by=NURSE)
        cuff = f"AA:BB:CC:00:01:{i:02X}"
        await clinic.assign_cuff(chair.id, cuff, by=NURSE)
        session = await clinic.start_session(patient.id, chair.id, by=CLINICIAN)
        m = measurement(124, 80)
        await clinic.ingest_cuff_measurement(cuff, cuff_reading(m), clock.now, bytes(m))
        clock.advance(1)
        await clinic.record_dose(
            session.id, drug="ketamine", amount_mg=35, route="IM", by=CLINICIAN
        )
        clock.advance(1)
        m = measurement(186, 112)
        await clinic.ingest_cuff_measurement(cuff, cuff_reading(m), clock.now, bytes(m))


async def test_snapshot_queries_do_not_grow_with_the_number_of_chairs(
    clinic: Clinic, clock: FakeClock
) -> None:
    await add_chairs_in_session(clinic, clock, 1, 1)
    with counted_statements(clinic) as one_chair:
        await clinic.snapshot()
    await add_chairs_in_session(clinic, clock, 2, 4)
    with counted_statements(clinic) as five_chairs:
        snapshot = await clinic.snapshot()
    assert (len(snapshot.sessions), len(snapshot.latest_readings)) == (5, 5)
    assert len(five_chairs) == len(one_chair)


# -- the migration --------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def unmigrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'old.sqlite3'}"
    return str(request.getfixturevalue("fresh_postgres_url"))


INSERT_READING = text(
    "INSERT INTO readings (source, device_address, cuff_user_id, measured_at, received_at, "
    "systolic, diastolic, flags, valid) VALUES ('cuff', :cuff, 1, :at, :at, 120, 80, '[]', "
    "true)"
)
INSERT_KEYED_FAILURE = text(
    "INSERT INTO readings (source, device_address, cuff_user_id, cuff_key, measured_at, "
    "received_at, flags, valid) VALUES ('cuff', :cuff, 1, :key, :at, :at, '[]', false)"
)


@pytest.fixture
async def upgraded(unmigrated_url: str, clock: FakeClock) -> AsyncIterator[AsyncEngine]:
    """A database at 0001 holding one reading, then upgraded to the head."""
    await migrate(unmigrated_url, "0001")
    engine = create_engine(unmigrated_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(INSERT_READING, {"cuff": CUFF, "at": clock.now})
        await migrate(unmigrated_url)
        yield engine
    finally:
        await engine.dispose()


async def test_upgrade_from_0001_keeps_the_readings_and_adds_the_cuff_key(
    upgraded: AsyncEngine,
) -> None:
    async with upgraded.connect() as connection:
        kept = (await connection.execute(text("SELECT id, cuff_key FROM readings"))).all()
    assert [tuple(row) for row in kept] == [(1, None)]


async def test_upgraded_database_refuses_a_second_reading_with_the_same_cuff_key(
    upgraded: AsyncEngine, clock: FakeClock
) -> None:
    with pytest.raises(IntegrityError):
        async with upgraded.begin() as connection:
            for minutes in (1, 2):
                at = clock.now + timedelta(minutes=minutes)
                await connection.execute(
                    INSERT_KEYED_FAILURE, {"cuff": CUFF, "key": "seq:1", "at": at}
                )


async def test_upgraded_readings_stay_append_only(upgraded: AsyncEngine) -> None:
    with pytest.raises(DBAPIError, match="append-only"):
        async with upgraded.begin() as connection:
            await connection.execute(text("UPDATE readings SET cuff_key = 'x'"))


async def test_ingest_survives_the_loss_of_the_writers_postgresql_connection(
    request: pytest.FixtureRequest, clock: FakeClock
) -> None:
    url = await emptied(str(request.getfixturevalue("migrated_postgres_url")))
    clinic = Clinic(create_engine(url), clock=clock)
    try:
        await ingest(clinic, clock)  # the writer's connection is open from here on
        async with clinic.engine.connect() as reader:
            await reader.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        clock.advance(1)
        result = await ingest(clinic, clock)
    finally:
        await clinic.close()
    assert not result.duplicate


async def test_reader_pool_is_sized_by_the_settings(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_reader_pool_size=3,
        database_reader_max_overflow=2,
    )
    clinic = await Clinic.open(settings)
    try:
        pool: Any = clinic.engine.pool
        assert (pool.size(), pool._max_overflow) == (3, 2)
    finally:
        await clinic.close()


async def test_finding_5_a_late_record_of_a_closed_session_alerts_with_the_patients_name(
    ward: Ward, clock: FakeClock
) -> None:
    """A 196/118 measured before the close and delivered after it: stored on its session
    and alerting, named by the patient, so the patient can be called back (#13 finding 5).
    The chair already holds nobody's alert: the alert is the session's."""
    session = await start(ward)
    await ingest(ward.clinic, clock, measurement(122, 78))
    clock.advance(3)
    measured = clock.now
    clock.advance(1)
    await ingest(ward.clinic, clock, measurement(121, 77))
    await ward.clinic.close_session(session.id, by=CLINICIAN, reason="patient left")
    clock.advance(2)
    m = measurement(196, 118)
    result = await ward.clinic.ingest_cuff_measurement(CUFF, cuff_reading(m), measured, bytes(m))
    assert (result.attached, result.reading.session_id) == (True, session.id)
    (alert,) = await ward.clinic.list_alerts(session_id=session.id, kind="severe_hypertension")
    assert alert.state == "active"
    assert alert.message.startswith("J. D.: ") and "196/118" in alert.message
    assert (alert.reading_id, alert.chair_id) == (result.reading.id, None)

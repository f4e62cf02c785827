"""The migration builds the schema the models describe; append-only tables stay so."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from tests.storage.conftest import CLINICIAN, CUFF, FakeClock, Ward
from tests.storage.cuff import measurement
from vitalsd.clinic import Clinic
from vitalsd.cuff_readings import cuff_reading
from vitalsd.store.engine import create_engine, migrate
from vitalsd.store.models import Base


def differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrated_schema_matches_the_models(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
    finally:
        await engine.dispose()


async def test_migrating_twice_changes_nothing(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        await migrate(database_url)
        async with engine.connect() as connection:
            version = await connection.scalar(text("SELECT version_num FROM alembic_version"))
        assert version == "0007"
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE readings SET systolic = 100",
        "DELETE FROM readings",
        "UPDATE audit_log SET actor = 'someone'",
        "DELETE FROM audit_log",
        "DELETE FROM events",
    ],
)
async def test_append_only_tables_refuse_changes(
    ward: Ward, clock: FakeClock, statement: str
) -> None:
    await ward.clinic.start_session(ward.patient_id, ward.chair_id, by=CLINICIAN)
    m = measurement()
    await ward.clinic.ingest_cuff_measurement(CUFF, cuff_reading(m), clock.now, bytes(m))
    with pytest.raises(DBAPIError, match="append-only"):
        async with ward.clinic.engine.begin() as connection:
            await connection.execute(text(statement))


async def test_times_come_back_timezone_aware_utc(clinic: Clinic) -> None:
    device = await clinic.update_device(CUFF, at=datetime(2025, 3, 3, 10, 0, tzinfo=UTC))
    (listed,) = await clinic.list_devices()
    assert listed.last_seen_at is not None and listed.last_seen_at == device.last_seen_at
    assert listed.last_seen_at.tzinfo is not None

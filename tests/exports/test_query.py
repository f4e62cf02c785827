"""Reading a session for export from the core's tables, on SQLite and PostgreSQL (where
the export reads in one REPEATABLE READ transaction)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.exports.conftest import (
    CUFF,
    T0,
    EsketamineSession,
    FakeClock,
    open_clinic,
    record_esketamine_session,
)
from vitalsd.clinic import Clinic
from vitalsd.errors import InvalidInput, NotFound
from vitalsd.exports.query import load_readings_between, load_session_record


@pytest.fixture(params=["sqlite", "postgresql"])
async def recorded(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Clinic, EsketamineSession]]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'vitalsd.sqlite3'}"
    else:
        url = str(request.getfixturevalue("fresh_postgres_url"))
    clock = FakeClock(T0)
    clinic = await open_clinic(url, clock, fresh=True)
    try:
        yield clinic, await record_esketamine_session(clinic, clock)
    finally:
        await clinic.close()


async def test_session_record_holds_what_the_clinic_stored(
    recorded: tuple[Clinic, EsketamineSession],
) -> None:
    clinic, stored = recorded
    async with clinic.read_snapshot() as db:
        record = await load_session_record(db, stored.id)
    assert record.patient.identifier == "MRN-0042"
    assert record.chair_name == "Chair 3"
    assert [r.source for r in record.readings] == ["cuff", "cuff", "manual"]
    assert record.readings[1].flags == ("body_movement",)
    assert [d.amount_mg for d in record.doses] == [56.0]
    assert [s.effect for s in record.side_effects] == ["dissociation"]
    assert {c.kind for c in record.checks} >= {"baseline", "post_dose", "close"}
    (device,) = record.devices
    assert (device.address, device.serial) == (CUFF, "SN-0001")
    assert record.closed_at == T0 + timedelta(minutes=140)


async def test_unknown_session_is_not_found(recorded: tuple[Clinic, EsketamineSession]) -> None:
    clinic, _ = recorded
    async with clinic.read_snapshot() as db:
        with pytest.raises(NotFound, match="no session with id 999"):
            await load_session_record(db, 999)


async def test_range_includes_its_start_and_excludes_its_end(
    recorded: tuple[Clinic, EsketamineSession],
) -> None:
    clinic, _ = recorded
    baseline, post_dose = T0 + timedelta(minutes=5), T0 + timedelta(minutes=50)
    async with clinic.read_snapshot() as db:
        readings = await load_readings_between(db, baseline, post_dose)
    assert [r.measured_at for r in readings] == [baseline]


async def test_range_ending_before_it_starts_is_refused(
    recorded: tuple[Clinic, EsketamineSession],
) -> None:
    clinic, _ = recorded
    async with clinic.read_snapshot() as db:
        with pytest.raises(InvalidInput, match="must be later than start"):
            await load_readings_between(db, T0, T0 - timedelta(minutes=1))

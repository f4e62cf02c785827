"""Notify tests: a real clinic on SQLite (migrated), a fake clock, a real HTTP receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from tests.clock import FakeClock
from tests.notify.receiver import WebhookReceiver
from vitalsd.clinic import Actor, Clinic
from vitalsd.domain import Role
from vitalsd.store.engine import create_engine, migrate

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
NURSE = Actor("nurse.kim", Role.NURSE)
CLINICIAN = Actor("dr.lee", Role.CLINICIAN)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def clinic(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Clinic]:
    from tests.notify.test_webhooks import MADE

    url = f"sqlite+aiosqlite:///{tmp_path / 'vitalsd.sqlite3'}"
    await migrate(url)
    service = Clinic(create_engine(url), clock=clock)
    try:
        yield service
    finally:
        while MADE:
            await MADE.pop().close()
        await service.close()


@pytest.fixture
async def session_id(clinic: Clinic) -> int:
    """Casey Diaz in session on Chair 3."""
    patient = await clinic.create_patient("MRN-3", "Casey Diaz", date(1971, 1, 23), by=NURSE)
    chair = await clinic.create_chair("Chair 3", by=NURSE)
    session = await clinic.start_session(patient.id, chair.id, by=CLINICIAN)
    return session.id


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    try:
        yield server
    finally:
        server.stop()

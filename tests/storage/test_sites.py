"""Scale by site (issue #16): each site of a clinic group numbers its events in its own
stream. Two daemons of two sites on the suite's private PostgreSQL cluster, each with its
own web server, as in `test_multinode.py`."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection, select, text
from sqlalchemy.exc import DBAPIError
from websockets.asyncio.client import connect

from tests.clock import FakeClock
from tests.storage.cuff import measurement
from tests.storage.test_multinode import (
    PATIENCE_S,
    STAFF,
    Node,
    Tablet,
    running_node,
    ward_with_session,
)
from vitalsd.clinic import Actor, Clinic
from vitalsd.cuff_readings import cuff_reading
from vitalsd.domain import Role
from vitalsd.errors import Conflict
from vitalsd.store import models
from vitalsd.store.engine import alembic_config, create_engine, migrate
from vitalsd.store.events import EventType, events_after
from vitalsd.store.leader import timer_lock_key

pytestmark = pytest.mark.timeout(120)

CLINICIAN = Actor("dr.lee", Role.CLINICIAN)
NORTH_CUFF = "AA:BB:CC:00:16:11"
SOUTH_CUFF = "AA:BB:CC:00:16:22"
READINGS = 12


@pytest.fixture
async def sites(fresh_postgres_url: str, tmp_path: Path) -> AsyncIterator[tuple[Node, Node]]:
    """Node A writes for site "north", node B for site "south"."""
    async with (
        running_node(fresh_postgres_url, tmp_path / "a", site="north") as a,
        running_node(fresh_postgres_url, tmp_path / "b", site="south") as b,
    ):
        await a.clinic.create_user(
            Role.NURSE.value, "not-a-hash: tokens issued directly", Role.NURSE
        )
        yield a, b


@contextlib.asynccontextmanager
async def tablet_of(node: Node, query: str = "") -> AsyncIterator[Tablet]:
    url = node.url.replace("http", "ws") + f"ws?token={node.token()}{query}"
    async with connect(url) as websocket:
        tablet = Tablet(websocket)
        pumping = asyncio.create_task(tablet.pump())
        try:
            await tablet.wait_for(lambda: bool(tablet.messages), PATIENCE_S)
            assert tablet.messages[0]["type"] == "snapshot"
            yield tablet
        finally:
            pumping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pumping


async def ingest(clinic: Clinic, cuff: str, count: int) -> None:
    for i in range(count):
        m = measurement(120 + i % 40, 80)
        await clinic.ingest_cuff_measurement(cuff, cuff_reading(m), datetime.now(UTC), bytes(m))


async def stored_seqs(clinic: Clinic) -> dict[str, list[int]]:
    async with clinic.read_snapshot() as session:
        rows = await session.execute(
            select(models.EventRow.site, models.EventRow.seq).order_by(
                models.EventRow.site, models.EventRow.seq
            )
        )
        seqs: dict[str, list[int]] = {}
        for site, seq in rows:
            seqs.setdefault(site, []).append(seq)
        return seqs


async def test_two_sites_write_at_once_and_each_sites_numbers_are_gapless(
    sites: tuple[Node, Node],
) -> None:
    a, b = sites
    _, north_session = await ward_with_session(a.clinic, NORTH_CUFF)
    _, south_session = await ward_with_session(b.clinic, SOUTH_CUFF)
    await asyncio.gather(
        ingest(a.clinic, NORTH_CUFF, READINGS), ingest(b.clinic, SOUTH_CUFF, READINGS)
    )
    seqs = await stored_seqs(a.clinic)
    assert set(seqs) == {"north", "south"}
    for site, numbers in seqs.items():
        assert numbers == list(range(1, len(numbers) + 1)), site
    assert seqs["north"][-1] == await a.clinic.bus.last_seq()
    assert seqs["south"][-1] == await b.clinic.bus.last_seq()
    north = await a.clinic.list_readings(session_id=north_session)
    south = await b.clinic.list_readings(session_id=south_session)
    assert len(north) == len(south) == READINGS


async def test_a_tablet_resumes_its_sites_stream_with_since_gapless_and_only_its_site(
    sites: tuple[Node, Node],
) -> None:
    a, b = sites
    await ward_with_session(a.clinic, NORTH_CUFF)
    await ward_with_session(b.clinic, SOUTH_CUFF)
    async with tablet_of(a) as tablet:
        snapshot_seq = tablet.messages[0]["data"]["seq"]
        await ingest(a.clinic, NORTH_CUFF, 2)
        written = await a.clinic.bus.last_seq()
        await tablet.wait_for(lambda: written in tablet.seqs(), PATIENCE_S)
        assert tablet.seqs() == list(range(snapshot_seq + 1, written + 1))
    since = written
    await asyncio.gather(ingest(a.clinic, NORTH_CUFF, 3), ingest(b.clinic, SOUTH_CUFF, 3))
    resumed_to = await a.clinic.bus.last_seq()
    async with tablet_of(a, f"&since={since}") as tablet:
        await ingest(a.clinic, NORTH_CUFF, 1)
        last = await a.clinic.bus.last_seq()
        await tablet.wait_for(lambda: last in tablet.seqs(), PATIENCE_S)
        assert resumed_to > since
        assert tablet.seqs() == list(range(since + 1, last + 1))
        stored = [m for m in tablet.messages if m.get("seq") is not None]
        assert {m.get("site") for m in stored} == {"north"}
        # The other site's readings are not in this stream.
        cuffs = {m["data"].get("cuff_address") for m in tablet.of_type("reading")}
        assert SOUTH_CUFF not in cuffs


async def test_a_tablet_of_node_b_following_site_a_gets_as_events(
    sites: tuple[Node, Node],
) -> None:
    a, b = sites
    await ward_with_session(a.clinic, NORTH_CUFF)
    await ward_with_session(b.clinic, SOUTH_CUFF)
    async with tablet_of(b, "&site=north") as tablet:
        start = tablet.messages[0]["data"]["seq"]
        assert start == await a.clinic.bus.last_seq()
        await ingest(a.clinic, NORTH_CUFF, 3)
        written = await a.clinic.bus.last_seq()
        await tablet.wait_for(lambda: written in tablet.seqs(), PATIENCE_S)
        assert tablet.seqs() == list(range(start + 1, written + 1))
        assert len(tablet.of_type("reading")) == 3
        # The snapshot is north's: north's chairs only (south's would never update here).
        chairs = tablet.messages[0]["data"]["chairs"]
        assert [c["cuff_address"] for c in chairs] == [NORTH_CUFF]
        assert {m["site"] for m in tablet.messages if m.get("seq") is not None} == {"north"}


async def test_a_site_nobody_has_is_refused(sites: tuple[Node, Node]) -> None:
    a, _ = sites
    url = a.url.replace("http", "ws") + f"ws?token={a.token()}&site=nowhere"
    with pytest.raises(Exception, match="404"):
        async with connect(url):
            pass


async def test_a_group_wide_reader_reads_every_sites_events_after_its_cursors(
    sites: tuple[Node, Node],
) -> None:
    a, b = sites
    await ward_with_session(a.clinic, NORTH_CUFF)
    await ward_with_session(b.clinic, SOUTH_CUFF)
    await asyncio.gather(ingest(a.clinic, NORTH_CUFF, 2), ingest(b.clinic, SOUTH_CUFF, 2))
    engine = create_engine(a.settings.effective_database_url)
    try:
        async with engine.connect() as connection:
            everything = await events_after(connection, {}, 1000)
            north_last = await a.clinic.bus.last_seq()
            south_last = await b.clinic.bus.last_seq()
            assert [(e.site, e.seq) for e in everything] == [
                *(("north", s) for s in range(1, north_last + 1)),
                *(("south", s) for s in range(1, south_last + 1)),
            ]
            await ingest(b.clinic, SOUTH_CUFF, 1)
            after = await events_after(connection, {"north": north_last, "south": south_last}, 1000)
            assert {e.site for e in after} == {"south"}
            assert [e.seq for e in after] == list(
                range(south_last + 1, south_last + 1 + len(after))
            )
            readings = await events_after(connection, {}, 1000, types={EventType.READING})
            assert {e.type for e in readings} == {EventType.READING}
            assert {e.site for e in readings} == {"north", "south"}
            # A limit is per site, each site's part gapless from its cursor.
            first = await events_after(connection, {}, 2)
            assert [(e.site, e.seq) for e in first] == [
                ("north", 1),
                ("north", 2),
                ("south", 1),
                ("south", 2),
            ]
    finally:
        await engine.dispose()


async def test_a_daemon_does_not_write_for_another_sites_chair(sites: tuple[Node, Node]) -> None:
    """Its memory and its counter are its site's: the chair's own site's daemon writes
    for it, numbered in that site's stream."""
    a, b = sites
    chair_id, session_id = await ward_with_session(a.clinic, NORTH_CUFF)
    patient = await b.clinic.create_patient("MRN-S1", "Sam Poe", date(1971, 2, 2), by=STAFF)
    before = await stored_seqs(a.clinic)
    with pytest.raises(Conflict, match="north"):
        await b.clinic.start_session(patient.id, chair_id, by=CLINICIAN)
    with pytest.raises(Conflict, match="north"):
        await b.clinic.assign_cuff(chair_id, SOUTH_CUFF, by=STAFF)
    with pytest.raises(Conflict, match="north"):
        await b.clinic.close_session(session_id, by=CLINICIAN)
    severe = measurement(188, 114)
    await a.clinic.ingest_cuff_measurement(
        NORTH_CUFF, cuff_reading(severe), datetime.now(UTC), bytes(severe)
    )
    alerts = await a.clinic.list_alerts(session_id=session_id)
    assert alerts
    before = await stored_seqs(a.clinic)
    with pytest.raises(Conflict, match="north"):
        await b.clinic.acknowledge_alert(alerts[0].id, by=CLINICIAN)
    after = await stored_seqs(a.clinic)
    assert after == before
    assert (await a.clinic.get_alert(alerts[0].id)).state == alerts[0].state


async def test_a_reading_of_a_cuff_on_another_sites_chair_joins_no_session_there(
    sites: tuple[Node, Node],
) -> None:
    a, b = sites
    _, session_id = await ward_with_session(a.clinic, NORTH_CUFF)
    north_before = await a.clinic.bus.last_seq()
    await ingest(b.clinic, NORTH_CUFF, 1)
    assert await a.clinic.list_readings(session_id=session_id) == []
    stray = await b.clinic.list_readings(device_address=NORTH_CUFF)
    assert [r.session_id for r in stray] == [None]
    assert await a.clinic.bus.last_seq() == north_before  # nothing in north's stream


def test_the_events_of_a_single_site_clinic_look_as_before() -> None:
    from vitalsd.store.events import Event

    event = Event(7, EventType.READING, datetime(2026, 1, 1, tzinfo=UTC), {"x": 1})
    assert json.loads(event.text) == {
        "seq": 7,
        "type": "reading",
        "at": "2026-01-01T00:00:00+00:00",
        "data": {"x": 1},
    }
    assert json.loads(Event(7, event.type, event.at, {}, "north").text)["site"] == "north"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'vitalsd.sqlite3'}"
    return str(request.getfixturevalue("fresh_postgres_url"))


def _downgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, revision)


async def test_a_clinic_from_before_sites_keeps_its_events_as_the_default_sites(
    empty_database_url: str,
) -> None:
    """Migration 0007 on a database with events: they become the "default" site's, the
    counter goes on from where it was, the log stays append-only; and back down."""
    await migrate(empty_database_url, "0004")
    engine = create_engine(empty_database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("UPDATE event_counter SET last_seq = 2 WHERE id = 1"))
            for seq in (1, 2):
                await connection.execute(
                    text(
                        "INSERT INTO events (seq, type, at, data) "
                        "VALUES (:seq, 'reading', :at, '{}')"
                    ),
                    {"seq": seq, "at": datetime(2026, 1, 1, tzinfo=UTC)},
                )
        await migrate(engine)
        async with engine.connect() as connection:
            rows = (
                await connection.execute(text("SELECT site, seq FROM events ORDER BY seq"))
            ).all()
            assert [tuple(r) for r in rows] == [("default", 1), ("default", 2)]
            counters = (
                await connection.execute(text("SELECT site, last_seq FROM event_counter"))
            ).all()
            assert [tuple(r) for r in counters] == [("default", 2)]
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as connection:
                await connection.execute(text("DELETE FROM events"))
        clinic = Clinic(engine)
        await clinic.create_chair("Chair 1", by=STAFF)
        assert await clinic.bus.last_seq() == 2  # chairs send no event; numbering goes on
        await clinic.close()
        async with engine.begin() as connection:
            await connection.run_sync(_downgrade, "0004")
        async with engine.connect() as connection:
            back = (await connection.execute(text("SELECT id, last_seq FROM event_counter"))).all()
            assert [tuple(r) for r in back] == [(1, 2)]
    finally:
        await engine.dispose()


async def test_each_site_has_its_own_timer_leader(sites: tuple[Node, Node]) -> None:
    """One timer lock per site: each site's checks fall due on one of its own daemons
    (with one group-wide lock, one site's timers would never run)."""
    a, b = sites

    def leading(node: Node) -> bool:
        leadership = node.daemon.timer_leadership
        return leadership is not None and leadership.role == "leader"

    for _ in range(int(PATIENCE_S / 0.05)):  # a guard against a hang, not a timing
        if leading(a) and leading(b):
            break
        await asyncio.sleep(0.05)
    assert leading(a) and leading(b)
    assert timer_lock_key("north") != timer_lock_key("south") != timer_lock_key("default")


async def test_a_single_site_clinics_events_read_group_wide_are_its_stream(
    database_url: str,
) -> None:
    """SQLite or PostgreSQL, one daemon, the default site: `events_after` is its log."""
    engine = create_engine(database_url)
    clinic = Clinic(engine)
    try:
        await ward_with_session(clinic, NORTH_CUFF)
        await ingest(clinic, NORTH_CUFF, 2)
        last = await clinic.bus.last_seq()
        async with engine.connect() as connection:
            everything = await events_after(connection, {}, 1000)
            assert [(e.site, e.seq) for e in everything] == [
                ("default", s) for s in range(1, last + 1)
            ]
            assert await events_after(connection, {"default": last}, 1000) == []
            tail = await events_after(connection, {"default": last - 1}, 1000)
            assert [e.seq for e in tail] == [last]
            assert tail[0].type.value == everything[-1].type.value
    finally:
        await clinic.close()


async def test_a_ward_alert_is_renotified_by_exactly_one_sites_timers(
    fresh_postgres_url: str,
) -> None:
    """A ward-level alert (`nobody_watching`: no session, no chair) belongs to no site's
    chair: the site that raised it re-notifies it, and no other site does."""
    await migrate(fresh_postgres_url)
    clock = FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    north = Clinic(create_engine(fresh_postgres_url), site="north", clock=clock)
    south = Clinic(create_engine(fresh_postgres_url), site="south", clock=clock)
    try:
        await north.start()
        await south.start()
        await north.create_chair("North 1", by=CLINICIAN)  # each site has numbered events
        await south.nobody_watching(1, clock.now)
        clock.advance(2, seconds=1)
        before = {c: await c.bus.last_seq() for c in (north, south)}
        await south.apply_time()
        await north.apply_time()
        renotified = [
            (clinic.site, event.data["kind"])
            for clinic in (north, south)
            for event in await clinic.bus.stored_after(before[clinic])
            if event.data.get("renotify")
        ]
        assert renotified == [("south", "nobody_watching")]
    finally:
        await north.close()
        await south.close()

"""Several daemons on one PostgreSQL (DESIGN.md "Scale", issue #16): what production does
to them. Each test runs two nodes of one clinic group on the suite's private cluster,
each with its own web server, and replays one finding of the issue."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from bumble.link import LocalLink
from pydantic import SecretStr
from sqlalchemy import event as sqlalchemy_event
from websockets.asyncio.client import ClientConnection, connect

from api.app import create_app
from devices.bumble_backend import BumbleHost
from tests.browser.proxy import LoopbackProxy
from tests.storage.cuff import measurement
from vitalsd.auth import PasswordHasher, token_issuer_for
from vitalsd.clinic import Actor, Clinic
from vitalsd.cuff_readings import cuff_reading
from vitalsd.daemon import Daemon, require_shared_secret, serve
from vitalsd.domain import Role
from vitalsd.settings import Settings
from vitalsd.store import engine as engine_module
from vitalsd.store.feed import asyncpg_dsn

pytestmark = pytest.mark.timeout(120)

SECRET = "multinode-test-secret-0123456789abcdef"
STAFF = Actor("setup", Role.ADMIN)
CLINICIAN = Actor("dr.lee", Role.CLINICIAN)
CUFF = "AA:BB:CC:00:16:01"
# Issue #16's own numbers: another node's tablets get every event within 3 s of a lost
# listener; a standby takes over the timers within 5 s.
FEED_RECOVERY_S = 3.0
TAKEOVER_S = 5.0
# A guard against a hang, never a timing assertion.
PATIENCE_S = 30.0


def settings_for(url: str, data_dir: Path, **overrides: Any) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=url,
        port=0,
        token_secret=SecretStr(SECRET),
        # The feed's details in /healthz, as an admin sees them (#17: anonymous callers
        # get ok/degraded only; the status code says degraded either way).
        public_health_details=True,
        **overrides,
    )


@dataclass
class Tablet:
    """A `/ws` client collecting every message in the background."""

    socket: ClientConnection
    messages: list[dict[str, Any]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def pump(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self.socket:
                self.messages.append(json.loads(raw))
                self.arrived.set()

    def seqs(self) -> list[int]:
        return [
            m["seq"] for m in self.messages if m.get("seq") is not None and m["type"] != "snapshot"
        ]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]

    async def wait_for(self, done: Callable[[], bool], within_s: float) -> None:
        async with asyncio.timeout(within_s):
            while not done():
                self.arrived.clear()
                await self.arrived.wait()


@dataclass
class Node:
    settings: Settings
    clinic: Clinic
    daemon: Daemon

    @property
    def url(self) -> str:
        assert self.daemon.url is not None
        return self.daemon.url

    def token(self, role: Role = Role.NURSE) -> str:
        return token_issuer_for(self.settings).issue(role.value, role, datetime.now(UTC))

    @contextlib.asynccontextmanager
    async def tablet(self) -> AsyncIterator[Tablet]:
        url = self.url.replace("http", "ws") + f"ws?token={self.token()}"
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

    async def health(self) -> httpx.Response:
        async with httpx.AsyncClient() as client:
            return await client.get(self.url + "healthz")


@contextlib.asynccontextmanager
async def running_node(
    url: str, data_dir: Path, clock: Callable[[], datetime] | None = None, **overrides: Any
) -> AsyncIterator[Node]:
    settings = settings_for(url, data_dir, **overrides)
    clinic = await Clinic.open(settings, **({} if clock is None else {"clock": clock}))
    central = await BumbleHost.on_link(LocalLink())  # type: ignore[no-untyped-call]
    daemon = Daemon(settings, clinic, ble=central, zone=UTC)
    ready = asyncio.Event()
    running = asyncio.create_task(daemon.run(on_ready=lambda _url: ready.set()))
    try:
        async with asyncio.timeout(PATIENCE_S):
            await ready.wait()
        yield Node(settings, clinic, daemon)
    finally:
        daemon.stop()
        await running
        await central.close()
        await clinic.close()


@pytest.fixture
async def group_url(fresh_postgres_url: str) -> str:
    return fresh_postgres_url


@pytest.fixture
async def nodes(group_url: str, tmp_path: Path) -> AsyncIterator[tuple[Node, Node]]:
    async with (
        running_node(group_url, tmp_path / "a") as a,
        running_node(group_url, tmp_path / "b") as b,
    ):
        await a.clinic.create_user(
            Role.NURSE.value, "not-a-hash: tokens issued directly", Role.NURSE
        )
        yield a, b


async def terminate_backends(url: str, *pids: int | None) -> None:
    """`pg_terminate_backend`: what a DBA, a failover or an idle-connection killer does."""
    admin = await asyncpg.connect(asyncpg_dsn(url))
    try:
        for pid in pids:
            if pid is not None:
                await admin.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def every_backend_of(url: str) -> list[int]:
    admin = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        return [int(r["pid"]) for r in rows]
    finally:
        await admin.close()


async def ward_with_session(clinic: Clinic, cuff: str = CUFF) -> tuple[int, int]:
    """A patient on a chair with `cuff`, in an open session: (chair id, session id)."""
    patient = await clinic.create_patient(
        f"MRN-{cuff[-2:]}", "Robin Poe", date(1970, 1, 1), by=STAFF
    )
    chair = await clinic.create_chair(f"Chair {cuff[-2:]}", by=STAFF)
    await clinic.assign_cuff(chair.id, cuff, by=STAFF)
    session = await clinic.start_session(patient.id, chair.id, by=CLINICIAN)
    return chair.id, session.id


async def last_seq(clinic: Clinic) -> int:
    return await clinic.bus.last_seq()


# -- 1. the listener ------------------------------------------------------------------------


async def test_listener_terminated_other_nodes_tablet_gets_every_event_within_3_s(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    _, session_id = await ward_with_session(a.clinic)
    async with b.tablet() as tablet:
        assert b.clinic.bus.feed is not None
        await terminate_backends(a.settings.effective_database_url, b.clinic.bus.feed.backend_pid)
        for systolic, diastolic in ((128, 80), (188, 114), (150, 95)):
            m = measurement(systolic, diastolic)
            await a.clinic.ingest_cuff_measurement(
                CUFF, cuff_reading(m), datetime.now(UTC), bytes(m)
            )
        written = await last_seq(a.clinic)
        await tablet.wait_for(lambda: written in tablet.seqs(), FEED_RECOVERY_S)
        first = tablet.seqs()[0]
        assert tablet.seqs() == list(range(first, written + 1))  # gapless, no duplicate
        severe = [m for m in tablet.of_type("alert") if m["data"]["kind"] == "severe_hypertension"]
        assert [m["data"]["session_id"] for m in severe] == [session_id]
    assert b.clinic.bus.feed is not None and b.clinic.bus.feed.reconnects >= 1


async def test_every_connection_cut_at_once_both_nodes_recover(nodes: tuple[Node, Node]) -> None:
    """What a database restart does to the nodes: every connection gone at once. The
    next write through A's API is served (its writer finds a fresh connection) and B's
    tablet receives it."""
    a, b = nodes
    _, session_id = await ward_with_session(a.clinic)
    async with b.tablet() as tablet:
        url = a.settings.effective_database_url
        await terminate_backends(url, *await every_backend_of(url))
        await asyncio.sleep(engine_module.WRITER_IDLE_PING_S)  # the writer idles meanwhile
        async with httpx.AsyncClient() as client:
            response = await client.post(
                a.url + f"api/sessions/{session_id}/readings",
                json={"systolic": 131, "diastolic": 84},
                headers={"Authorization": f"Bearer {a.token()}"},
            )
        assert response.status_code == 201, response.text
        reading_id = response.json()["id"]
        await tablet.wait_for(
            lambda: reading_id in [m["data"]["id"] for m in tablet.of_type("reading")],
            FEED_RECOVERY_S,
        )


async def test_feed_down_is_degraded_health_and_tells_the_tablet_then_catches_up(
    group_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """B reaches the database through a line that goes down: its /healthz says degraded
    and its tablets are told the feed is behind; back up, everything A wrote meanwhile
    arrives, and no task failed unseen."""
    host, port = group_url.split("@", 1)[1].split("/", 1)[0].split(":")
    proxy = LoopbackProxy(host, int(port))
    await proxy.start()
    via_proxy = group_url.replace(f"{host}:{port}", f"127.0.0.1:{proxy.port}")
    caplog.set_level(logging.WARNING)
    try:
        async with (
            running_node(group_url, tmp_path / "a") as a,
            running_node(via_proxy, tmp_path / "b") as b,
        ):
            await a.clinic.create_user(Role.NURSE.value, "unused", Role.NURSE)
            await ward_with_session(a.clinic)
            assert (await b.health()).json()["feed"]["state"] == "live"
            async with b.tablet() as tablet:
                await proxy.cut()
                await tablet.wait_for(
                    lambda: any(
                        m["data"]["state"] == "behind" for m in tablet.of_type("feed_status")
                    ),
                    PATIENCE_S,
                )
                health = await b.health()
                assert health.status_code == 503
                assert health.json()["status"] == "degraded"
                assert health.json()["feed"]["state"] != "live"
                m = measurement(190, 112)
                await a.clinic.ingest_cuff_measurement(
                    CUFF, cuff_reading(m), datetime.now(UTC), bytes(m)
                )
                written = await last_seq(a.clinic)
                await asyncio.sleep(1.5)  # a few failed reconnections and polls
                assert written not in tablet.seqs()
                await proxy.restore()
                await tablet.wait_for(
                    lambda: tablet.of_type("feed_status")[-1]["data"]["state"] == "live",
                    PATIENCE_S,
                )
                assert written in tablet.seqs()  # caught up before it said "live"
            assert (await b.health()).json()["feed"]["state"] == "live"
    finally:
        await proxy.close()
    messages = [r.getMessage() for r in caplog.records]
    assert any("lost the feed from the other daemons" in text for text in messages)
    assert not any("never retrieved" in text for text in messages)


# -- 2. connection loss in a request ----------------------------------------------------------


async def test_database_gone_answers_503_with_retry_after(group_url: str, tmp_path: Path) -> None:
    host, port = group_url.split("@", 1)[1].split("/", 1)[0].split(":")
    proxy = LoopbackProxy(host, int(port))
    await proxy.start()
    settings = settings_for(
        group_url.replace(f"{host}:{port}", f"127.0.0.1:{proxy.port}"), tmp_path
    )
    clinic = await Clinic.open(settings)
    try:
        await clinic.create_user(Role.NURSE.value, "unused", Role.NURSE)
        _, session_id = await ward_with_session(clinic)
        app = create_app(
            clinic, settings, tokens=token_issuer_for(settings), passwords=PasswordHasher()
        )
        token = token_issuer_for(settings).issue("nurse", Role.NURSE, datetime.now(UTC))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://vitalsd.test") as client:
            await proxy.cut()
            response = await client.post(
                f"/api/sessions/{session_id}/readings",
                json={"systolic": 131, "diastolic": 84},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 503, response.text
            assert response.headers["Retry-After"] == "1"
            await proxy.restore()
            response = await client.post(
                f"/api/sessions/{session_id}/readings",
                json={"systolic": 131, "diastolic": 84},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 201, response.text
    finally:
        await clinic.close()
        await proxy.close()


# -- 3. migrations ------------------------------------------------------------------------------


# -- 4. the timer leader --------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def serve_process(
    url: str, data_dir: Path, **env: str
) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """`vitalsd serve` in its own process (so that it can be killed with SIGKILL)."""
    port = _free_port()
    environment = {
        **os.environ,
        "VITALSD_DATABASE_URL": url,
        "VITALSD_TOKEN_SECRET": SECRET,
        "VITALSD_DATA_DIR": str(data_dir),
        "VITALSD_PORT": str(port),
        "VITALSD_BLE": "tcp-client:127.0.0.1:9",  # no radio: the API and timers serve on
        **env,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from vitalsd.cli import main; raise SystemExit(main(['serve']))",
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/"
    try:
        async with httpx.AsyncClient() as client, asyncio.timeout(PATIENCE_S):
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(base + "healthz")).status_code == 200:
                        break
                assert process.returncode is None, "vitalsd serve exited"
                await asyncio.sleep(0.1)
        yield base, process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)
        await process.wait()


async def test_two_nodes_started_at_once_on_an_empty_database_both_come_up(
    fresh_postgres_url: str, tmp_path: Path
) -> None:
    """Both migrate at start (`vitalsd serve` in two processes); one waits for the
    other's migration instead of dying on `CREATE TABLE alembic_version`."""
    async with contextlib.AsyncExitStack() as stack:
        started = await asyncio.gather(
            *(
                stack.enter_async_context(serve_process(fresh_postgres_url, tmp_path / name))
                for name in ("a", "b", "c")
            )
        )
        async with httpx.AsyncClient() as client:
            for base, process in started:
                assert process.returncode is None
                health = await client.get(base + "healthz")
                assert health.json()["status"] == "ok", health.text


class ShiftedClock:
    """Real time plus a settable offset: B's clinic is moved 31 minutes on while it stands
    by, so what A set up falls due the moment B takes over."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


async def test_timer_leader_killed_standby_raises_overdue_and_escalates_within_5_s(
    group_url: str, tmp_path: Path
) -> None:
    """A leads the timers (it started first); a session's post-dose check window and a
    high alert's escalation are set up through A; A is killed with SIGKILL. B, standing
    by, takes over and raises the overdue check and escalates, with no write anywhere."""
    clock = ShiftedClock()
    async with serve_process(group_url, tmp_path / "a") as (a_url, a_process):
        async with running_node(group_url, tmp_path / "b", clock=clock) as b:
            leadership = b.daemon.timer_leadership
            assert leadership is not None
            async with asyncio.timeout(PATIENCE_S):
                while leadership.role != "standby":  # noqa: ASYNC110 (no event to wait on)
                    await asyncio.sleep(0.05)
            await b.clinic.create_user(Role.CLINICIAN.value, "unused", Role.CLINICIAN)
            patient = await b.clinic.create_patient(
                "MRN-T", "Robin Poe", date(1970, 1, 1), by=STAFF
            )
            chair = await b.clinic.create_chair("Chair T", by=STAFF)
            now = datetime.now(UTC)
            headers = {"Authorization": f"Bearer {b.token(Role.CLINICIAN)}"}
            async with httpx.AsyncClient(base_url=a_url, headers=headers) as through_a:
                session = await through_a.post(
                    "api/sessions",
                    json={
                        "patient_id": patient.id,
                        "chair_id": chair.id,
                        "started_at": (now - timedelta(minutes=15)).isoformat(),
                    },
                )
                assert session.status_code == 201, session.text
                session_id = session.json()["id"]
                for path, body in (
                    (
                        "readings",
                        {
                            "systolic": 124,
                            "diastolic": 80,
                            "measured_at": (now - timedelta(minutes=10)).isoformat(),
                        },
                    ),
                    ("doses", {"drug": "ketamine", "amount_mg": 50, "route": "IM"}),
                    # A high alert, to escalate after 2 minutes unacknowledged.
                    ("readings", {"systolic": 188, "diastolic": 114}),
                ):
                    response = await through_a.post(f"api/sessions/{session_id}/{path}", json=body)
                    assert response.status_code == 201, response.text
            # The post-dose check's window (20-30 minutes after the dose) has closed and
            # the alert is due to escalate, on B's clock; A never saw it.
            clock.offset = timedelta(minutes=31)
            async with b.clinic.bus.subscribe() as events:
                a_process.send_signal(signal.SIGKILL)
                await a_process.wait()
                overdue = escalated = None
                async with asyncio.timeout(TAKEOVER_S):
                    async for event in events:
                        if event.type.value == "check_overdue":
                            overdue = event
                        if event.type.value == "alert_updated" and event.data.get("escalated_at"):
                            escalated = event
                        if overdue and escalated:
                            break
            assert overdue is not None and overdue.data["session_id"] == session_id
            assert escalated is not None and escalated.data["session_id"] == session_id
            assert leadership.role == "leader"


# -- 5. a cuff unassigned through another node; live pressure -------------------------------


async def test_cuff_unassigned_through_b_next_reading_through_a_is_stored_unattached(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    chair_id, session_id = await ward_with_session(a.clinic)
    m = measurement(198, 122)
    first = await a.clinic.ingest_cuff_measurement(
        CUFF, cuff_reading(m), datetime.now(UTC), bytes(m)
    )
    assert first.reading.session_id == session_id  # A now remembers cuff -> chair
    await b.clinic.assign_cuff(
        chair_id, None, by=Actor("nurse", Role.ADMIN), confirm=True, reason="cuff broken"
    )
    m = measurement(178, 114)
    later = await a.clinic.ingest_cuff_measurement(
        CUFF, cuff_reading(m), datetime.now(UTC) + timedelta(seconds=1), bytes(m)
    )
    assert not later.attached
    assert later.reading.session_id is None


async def test_cuff_pressure_reaches_the_other_nodes_tablets(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    async with b.tablet() as tablet:
        a.clinic.publish_cuff_pressure(CUFF, 87.5, datetime.now(UTC))
        await tablet.wait_for(lambda: bool(tablet.of_type("cuff_pressure")), PATIENCE_S)
        [pressure] = tablet.of_type("cuff_pressure")
    assert pressure["seq"] is None
    assert pressure["data"] == {"device_address": CUFF, "pressure_mmhg": 87.5}


# -- 6. the token secret -------------------------------------------------------------------


async def test_postgresql_without_a_token_secret_refuses_to_start(
    fresh_postgres_url: str, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=fresh_postgres_url)
    with pytest.raises(ValueError, match="VITALSD_TOKEN_SECRET"):
        await serve(settings)
    require_shared_secret(
        Settings(data_dir=tmp_path), Settings(data_dir=tmp_path).effective_database_url
    )


# -- 6b. a pooler in transaction mode ------------------------------------------------------


async def test_transaction_pooled_database_without_a_session_address_refuses_to_start(
    fresh_postgres_url: str, tmp_path: Path
) -> None:
    settings = settings_for(fresh_postgres_url + "?prepared_statement_cache_size=0", tmp_path)
    with pytest.raises(ValueError, match="database_session_url"):
        await serve(settings)


async def test_transaction_pooled_database_reuses_no_statement_and_listens_on_the_session_address(
    fresh_postgres_url: str, tmp_path: Path
) -> None:
    settings = settings_for(
        fresh_postgres_url + "?prepared_statement_cache_size=0",
        tmp_path,
        database_session_url=fresh_postgres_url,
    )
    clinic = await Clinic.open(settings)
    try:
        _, session_id = await ward_with_session(clinic)
        m = measurement()
        stored = await clinic.ingest_cuff_measurement(
            CUFF, cuff_reading(m), datetime.now(UTC), bytes(m)
        )
        assert stored.reading.session_id == session_id
        for engine in (clinic.engine, clinic.writer_engine):
            async with engine.connect() as connection:
                raw = await connection.get_raw_connection()
                assert raw.driver_connection is not None
                assert raw.driver_connection._stmt_cache.get_max_size() == 0
        assert clinic.bus.feed is not None and clinic.bus.feed.is_live
    finally:
        await clinic.close()


# -- 5b. memory: forget what another node changed, not everything ------------------------


async def test_a_write_after_another_nodes_write_reloads_only_what_it_touched(
    fresh_postgres_url: str, tmp_path: Path
) -> None:
    """Issue #16 finding 4: a write after another node's write reloaded every open session
    while holding the group-wide counter lock. Now A forgets what B's events name (one
    session) and its next reading elsewhere loads no other session."""
    a = await Clinic.open(settings_for(fresh_postgres_url, tmp_path / "a"))
    b = await Clinic.open(settings_for(fresh_postgres_url, tmp_path / "b"))
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    try:
        cuffs = [f"AA:BB:CC:00:17:{i:02X}" for i in range(6)]
        for cuff in cuffs:
            await ward_with_session(a, cuff)
        for cuff in cuffs:
            m = measurement()
            await a.ingest_cuff_measurement(cuff, cuff_reading(m), datetime.now(UTC), bytes(m))
        m = measurement(130, 85)
        await b.ingest_cuff_measurement(cuffs[0], cuff_reading(m), datetime.now(UTC), bytes(m))
        sqlalchemy_event.listen(a.writer_engine.sync_engine, "before_cursor_execute", note)
        m = measurement(132, 86)
        stored = await a.ingest_cuff_measurement(
            cuffs[1], cuff_reading(m), datetime.now(UTC), bytes(m)
        )
        sqlalchemy_event.remove(a.writer_engine.sync_engine, "before_cursor_execute", note)
        assert stored.attached
        whole_clinic = [s for s in statements if "closed_at IS NULL" in s]
        assert whole_clinic == [], statements
        # The session the reading goes to may be read again; never several at once.
        reloads = [s for s in statements if re.search(r"session_id IN \([^)]*,", s)]
        assert reloads == [], statements
    finally:
        await a.close()
        await b.close()

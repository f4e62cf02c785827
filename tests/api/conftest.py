"""An API on a real SQLite database, with one user per role, and a clock that moves only
when told. REST tests talk to it in-process (httpx ASGITransport); stream tests run it
under a real uvicorn on a loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from api.app import create_app
from tests.clock import FakeClock
from vitalsd.auth import PasswordHasher, TokenIssuer
from vitalsd.clinic import Actor, Clinic
from vitalsd.domain import Role
from vitalsd.settings import Settings
from vitalsd.store.engine import create_engine, migrate

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SECRET = b"api-tests-secret-api-tests-secre"
PASSWORD = "correct horse battery"
CUFF = "C0:FF:EE:00:00:01"
ADMIN = Actor("admin", Role.ADMIN)


@pytest.fixture(scope="session")
def passwords() -> PasswordHasher:
    return PasswordHasher()


@pytest.fixture(scope="session")
def password_hash(passwords: PasswordHasher) -> str:
    return passwords.hash(PASSWORD)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def tokens() -> TokenIssuer:
    return TokenIssuer(SECRET, lifetime=timedelta(hours=8))


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def _build_template(path: Path, password_hash: str) -> None:
    engine = create_engine(sqlite_url(path))
    await migrate(engine)
    clinic = Clinic(engine, clock=FakeClock(T0 - timedelta(days=1)))
    for role in Role:
        await clinic.create_user(role.value, password_hash, role)
    await clinic.close()  # the last connection checkpoints the WAL into the file


@pytest.fixture(scope="session")
def database_template(tmp_path_factory: pytest.TempPathFactory, password_hash: str) -> Path:
    """A migrated database with one user per role (named after it), built once: each
    test gets a copy, which is much faster than migrating again."""
    path = tmp_path_factory.mktemp("template") / "vitalsd.sqlite3"
    asyncio.run(_build_template(path, password_hash))
    return path


async def open_clinic(database_template: Path, tmp_path: Path, **kwargs: object) -> Clinic:
    path = tmp_path / "vitalsd.sqlite3"
    shutil.copyfile(database_template, path)
    return Clinic(create_engine(sqlite_url(path)), **kwargs)  # type: ignore[arg-type]


@pytest.fixture
async def clinic(
    database_template: Path, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Clinic]:
    service = await open_clinic(database_template, tmp_path, clock=clock)
    try:
        yield service
    finally:
        await service.close()


@pytest.fixture
def app(
    clinic: Clinic,
    tmp_path: Path,
    clock: FakeClock,
    tokens: TokenIssuer,
    passwords: PasswordHasher,
) -> FastAPI:
    return create_app(
        clinic, Settings(data_dir=tmp_path), tokens=tokens, passwords=passwords, clock=clock
    )


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://vitalsd.test") as http:
        yield http


@pytest.fixture
def auth(tokens: TokenIssuer, clock: FakeClock) -> dict[Role, dict[str, str]]:
    """`Authorization` headers, one per role (user names are the role names)."""
    return {
        role: {"Authorization": f"Bearer {tokens.issue(role.value, role, clock())}"}
        for role in Role
    }


class Ward:
    """A patient on a chair with a cuff: what most session tests start from."""

    def __init__(self, patient_id: int, chair_id: int) -> None:
        self.patient_id = patient_id
        self.chair_id = chair_id


@pytest.fixture
async def ward(clinic: Clinic) -> Ward:
    patient = await clinic.create_patient("MRN-1", "Alex Doe", date(1980, 6, 1), by=ADMIN)
    chair = await clinic.create_chair("Chair 1", by=ADMIN)
    await clinic.assign_cuff(chair.id, CUFF, by=ADMIN)
    return Ward(patient.id, chair.id)


@contextlib.asynccontextmanager
async def serving(
    app: FastAPI, *, send_buffer: int | None = None, ping_interval: float = 5.0
) -> AsyncIterator[str]:
    """Run `app` under uvicorn on a loopback socket bound here (no port race); yields
    `host:port`. `send_buffer` shrinks the kernel send buffer of accepted connections."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if send_buffer is not None:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", ws_ping_interval=ping_interval)
    )
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        listener.close()

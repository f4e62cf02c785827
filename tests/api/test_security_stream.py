"""Issue #17, findings 3, 8 and 13 replayed: no credential in the logs, one-time `/ws`
tickets, a per-user cap on streams, and `Secure` cookies behind a trusted TLS proxy."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from api.app import create_app
from api.handshake import HandshakeLimits
from api.logredact import redact
from tests.api.conftest import PASSWORD, FakeClock
from vitalsd.auth import PasswordHasher, TokenIssuer
from vitalsd.clinic import Actor, Clinic
from vitalsd.daemon import Daemon
from vitalsd.domain import Role
from vitalsd.settings import Settings


@contextlib.asynccontextmanager
async def live(app: FastAPI, **config: object) -> AsyncIterator[str]:
    """`app` under uvicorn on loopback with INFO logs (where it logs connects)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(app, log_config=None, log_level="info", lifespan="off", **config)  # type: ignore[arg-type]
    )
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        listener.close()


def capped_app(
    clinic: Clinic, tmp_path: Path, tokens: TokenIssuer, clock: FakeClock, **settings: object
) -> FastAPI:
    return create_app(
        clinic,
        Settings(data_dir=tmp_path, **settings),  # type: ignore[arg-type]
        tokens=tokens,
        passwords=PasswordHasher(),
        clock=clock,
    )


async def test_a_token_in_the_stream_url_never_reaches_the_logs(
    app: FastAPI, tokens: TokenIssuer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    token = tokens.issue("nurse", Role.NURSE, clock())
    caplog.set_level(logging.INFO)
    async with live(app) as address:
        async with connect(f"ws://{address}/ws?token={token}") as websocket:
            await websocket.recv()
        async with httpx.AsyncClient() as http:
            await http.get(f"http://{address}/api/patients?token={token}")
    # The server's logs (the test's own HTTP client logs its URL: not the daemon's).
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("uvicorn"))
    assert "/ws?token=[redacted]" in logged  # the connect was logged, without the token
    assert token not in logged
    assert token.split(".")[2] not in logged


def test_redaction_covers_every_credential_parameter() -> None:
    assert redact("GET /ws?since=3&ticket=abc&token=x.y.z HTTP/1.1") == (
        "GET /ws?since=3&ticket=[redacted]&token=[redacted] HTTP/1.1"
    )


async def test_a_ws_ticket_opens_one_stream_once(
    app: FastAPI, tokens: TokenIssuer, clock: FakeClock
) -> None:
    headers = {"Authorization": f"Bearer {tokens.issue('nurse', Role.NURSE, clock())}"}
    async with live(app) as address:
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            ticket = (await http.post("/api/auth/ws-ticket", headers=headers)).json()["ticket"]
        async with connect(f"ws://{address}/ws?ticket={ticket}") as websocket:
            assert '"snapshot"' in str(await websocket.recv())
        with pytest.raises(InvalidStatus) as again:
            async with connect(f"ws://{address}/ws?ticket={ticket}"):
                pass
        assert again.value.response.status_code == 401


async def test_an_expired_ws_ticket_is_refused(
    app: FastAPI, tokens: TokenIssuer, clock: FakeClock
) -> None:
    headers = {"Authorization": f"Bearer {tokens.issue('nurse', Role.NURSE, clock())}"}
    async with live(app) as address:
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            ticket = (await http.post("/api/auth/ws-ticket", headers=headers)).json()["ticket"]
        clock.advance(seconds=31)
        with pytest.raises(InvalidStatus) as late:
            async with connect(f"ws://{address}/ws?ticket={ticket}"):
                pass
        assert late.value.response.status_code == 401


def test_tokens_in_urls_are_refused_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding 3: no bearer token in a URL unless a clinic switches the legacy path on
    (the suite's own scripted clients do, through the environment: tests/conftest.py)."""
    monkeypatch.delenv("VITALSD_WS_TOKEN_IN_URL", raising=False)
    assert Settings().ws_token_in_url is False


async def test_tokens_in_urls_can_be_turned_off(
    clinic: Clinic, tmp_path: Path, tokens: TokenIssuer, clock: FakeClock
) -> None:
    app = capped_app(clinic, tmp_path, tokens, clock, ws_token_in_url=False)
    token = tokens.issue("nurse", Role.NURSE, clock())
    async with live(app) as address:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"ws://{address}/ws?token={token}"):
                pass
        assert refused.value.response.status_code == 401
        headers = {"Authorization": f"Bearer {token}"}
        async with connect(f"ws://{address}/ws", additional_headers=headers) as websocket:
            assert '"snapshot"' in str(await websocket.recv())


async def test_one_user_may_hold_only_so_many_streams(
    clinic: Clinic, tmp_path: Path, tokens: TokenIssuer, clock: FakeClock
) -> None:
    app = capped_app(clinic, tmp_path, tokens, clock, max_streams_per_user=3)
    headers = {"Authorization": f"Bearer {tokens.issue('nurse', Role.NURSE, clock())}"}
    other = {"Authorization": f"Bearer {tokens.issue('clinician', Role.CLINICIAN, clock())}"}
    async with live(app) as address, contextlib.AsyncExitStack() as streams:
        for _ in range(3):
            websocket = await streams.enter_async_context(
                connect(f"ws://{address}/ws", additional_headers=headers)
            )
            await websocket.recv()
        with pytest.raises(InvalidStatus) as fourth:
            async with connect(f"ws://{address}/ws", additional_headers=headers):
                pass
        assert fourth.value.response.status_code == 429
        async with connect(f"ws://{address}/ws", additional_headers=other) as websocket:
            assert '"snapshot"' in str(await websocket.recv())  # another user still may
    # Closed streams give their slots back.
    async with (
        live(app) as address,
        connect(f"ws://{address}/ws", additional_headers=headers) as websocket,
    ):
        assert '"snapshot"' in str(await websocket.recv())


async def test_behind_a_trusted_tls_proxy_the_cookie_is_secure(
    clinic: Clinic, tmp_path: Path, tokens: TokenIssuer, clock: FakeClock
) -> None:
    settings = Settings(data_dir=tmp_path, forwarded_allow_ips="127.0.0.1")
    app = capped_app(clinic, tmp_path, tokens, clock, forwarded_allow_ips="127.0.0.1")
    config = Daemon(settings, clinic)._server(app).config
    assert config.proxy_headers is True
    assert config.forwarded_allow_ips == "127.0.0.1"
    async with live(app, proxy_headers=True, forwarded_allow_ips="127.0.0.1") as address:
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            response = await http.post(
                "/api/auth/token?cookie=true",
                data={"username": "nurse", "password": PASSWORD},
                headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"},
            )
    assert response.status_code == 200
    cookies = response.headers.get_list("set-cookie")
    assert cookies and all("Secure" in c for c in cookies)
    assert "strict-transport-security" in response.headers
    audit = await clinic.list_audit(entity="user")
    assert "from 203.0.113.7" in (audit[-1].note or "")


async def test_without_a_trusted_proxy_forwarded_headers_are_ignored(
    clinic: Clinic, tmp_path: Path, tokens: TokenIssuer, clock: FakeClock
) -> None:
    app = capped_app(clinic, tmp_path, tokens, clock)
    assert Daemon(Settings(data_dir=tmp_path), clinic)._server(app).config.proxy_headers is False
    async with live(app, proxy_headers=False) as address:
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            response = await http.post(
                "/api/auth/token?cookie=true",
                data={"username": "nurse", "password": PASSWORD},
                headers={"X-Forwarded-Proto": "https"},
            )
    assert all("Secure" not in c for c in response.headers.get_list("set-cookie"))


async def test_a_password_reset_outside_the_api_ends_the_users_open_streams(
    clinic: Clinic, tmp_path: Path, tokens: TokenIssuer, clock: FakeClock
) -> None:
    """`vitalsd user passwd` (here: the clinic call it makes) moves the user's token
    version on; the hub's recheck closes their streams (1008), though no API call of this
    process changed anything."""
    app = create_app(
        clinic,
        Settings(data_dir=tmp_path),
        tokens=tokens,
        passwords=PasswordHasher(),
        clock=clock,
        handshake=HandshakeLimits(account_ttl_s=0.05, recheck_s=0.1),
    )
    headers = {"Authorization": f"Bearer {tokens.issue('nurse', Role.NURSE, clock())}"}
    async with live(app) as address:
        async with connect(f"ws://{address}/ws", additional_headers=headers) as websocket:
            await websocket.recv()
            admin = Actor("cli:root", Role.ADMIN)
            await clinic.set_password(
                "nurse", PasswordHasher().hash("a reset passphrase"), by=admin
            )
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(websocket.recv(), 30)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008

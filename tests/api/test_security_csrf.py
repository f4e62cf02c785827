"""Issue #17, findings 2 and 7 replayed: forged cross-origin requests and framing, and the
security headers of every answer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from api.app import create_app
from api.guards import CSRF_COOKIE, TOKEN_COOKIE, origin_allowed
from api.headers import CONTENT_SECURITY_POLICY
from tests.api.conftest import PASSWORD, FakeClock, serving
from vitalsd.auth import PasswordHasher, TokenIssuer
from vitalsd.clinic import Clinic
from vitalsd.domain import Role
from vitalsd.settings import Settings

Auth = dict[Role, dict[str, str]]
OWN = "http://vitalsd.test"
# Same site (same host), another port: another origin, as in the penetration test.
SIBLING = "http://vitalsd.test:8081"


async def cookie_login(client: httpx.AsyncClient, username: str = "nurse") -> str:
    response = await client.post(
        "/api/auth/token?cookie=true", data={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return client.cookies[CSRF_COOKIE]


async def test_a_form_posted_from_another_origin_is_refused(client: httpx.AsyncClient) -> None:
    csrf = await cookie_login(client)
    response = await client.post(
        "/api/alerts/1/acknowledge",
        headers={"Origin": SIBLING, "X-CSRF-Token": csrf},
    )
    assert response.status_code == 403
    assert "cross-origin" in response.json()["detail"]


async def test_a_no_cors_fetch_without_the_csrf_header_is_refused(
    client: httpx.AsyncClient,
) -> None:
    """A page elsewhere can make the browser send the cookie (same site), but cannot read
    the CSRF cookie to send the header."""
    await cookie_login(client)
    response = await client.post("/api/alerts/1/acknowledge")
    assert response.status_code == 403
    assert "x-csrf-token" in response.json()["detail"]


async def test_a_wrong_csrf_header_is_refused(client: httpx.AsyncClient) -> None:
    await cookie_login(client)
    response = await client.post("/api/auth/logout", headers={"X-CSRF-Token": "0" * 64})
    assert response.status_code == 403


async def test_the_dashboards_own_request_with_its_csrf_header_goes_through(
    client: httpx.AsyncClient,
) -> None:
    csrf = await cookie_login(client)
    response = await client.post(
        "/api/alerts/999/acknowledge", headers={"Origin": OWN, "X-CSRF-Token": csrf}
    )
    assert response.status_code == 404  # past the guard; no such alert


async def test_a_bearer_client_needs_no_csrf_header(client: httpx.AsyncClient, auth: Auth) -> None:
    response = await client.post("/api/alerts/999/acknowledge", headers=auth[Role.NURSE])
    assert response.status_code == 404


async def test_a_configured_origin_may_post(
    clinic: Clinic, tmp_path: object, clock: FakeClock, tokens: TokenIssuer, auth: Auth
) -> None:
    app = create_app(
        clinic,
        Settings(allowed_origins=["https://nurses.clinic.example"]),
        tokens=tokens,
        passwords=PasswordHasher(),
        clock=clock,
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=OWN) as http:
        allowed = await http.post(
            "/api/alerts/999/acknowledge",
            headers={"Origin": "https://nurses.clinic.example", **auth[Role.NURSE]},
        )
        other = await http.post(
            "/api/alerts/999/acknowledge",
            headers={"Origin": "https://evil.example", **auth[Role.NURSE]},
        )
    assert (allowed.status_code, other.status_code) == (404, 403)


async def test_a_cross_site_fetch_without_origin_is_refused_by_fetch_metadata(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    response = await client.post(
        "/api/alerts/999/acknowledge", headers={"Sec-Fetch-Site": "same-site", **auth[Role.NURSE]}
    )
    assert response.status_code == 403


@pytest.fixture
async def server(app: FastAPI) -> AsyncIterator[str]:
    async with serving(app) as address:
        yield address


async def test_a_websocket_from_another_origin_gets_no_snapshot(
    server: str, tokens: TokenIssuer, clock: FakeClock
) -> None:
    cookie = f"{TOKEN_COOKIE}={tokens.issue('nurse', Role.NURSE, clock())}"
    host, port = server.split(":")
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            f"ws://{server}/ws",
            origin=f"http://{host}:{int(port) + 1}",  # type: ignore[arg-type]
            additional_headers={"Cookie": cookie},
        ):
            pass
    assert refused.value.response.status_code == 403


async def test_a_websocket_from_the_dashboards_origin_streams(
    server: str, tokens: TokenIssuer, clock: FakeClock
) -> None:
    cookie = f"{TOKEN_COOKIE}={tokens.issue('nurse', Role.NURSE, clock())}"
    async with connect(
        f"ws://{server}/ws",
        origin=f"http://{server}",  # type: ignore[arg-type]
        additional_headers={"Cookie": cookie},
    ) as websocket:
        assert '"snapshot"' in str(await websocket.recv())


async def test_every_answer_forbids_framing_and_sniffing(client: httpx.AsyncClient) -> None:
    for path in ("/", "/js/main.js", "/healthz", "/api/patients"):
        headers = (await client.get(path)).headers
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"


async def test_patient_data_is_never_cached(client: httpx.AsyncClient, auth: Auth) -> None:
    response = await client.get("/api/patients", headers=auth[Role.NURSE])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"


async def test_hsts_only_under_tls(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://vitalsd.test") as tls:
        assert "max-age=" in (await tls.get("/healthz")).headers["strict-transport-security"]
    async with httpx.AsyncClient(transport=transport, base_url="http://vitalsd.test") as plain:
        assert "strict-transport-security" not in (await plain.get("/healthz")).headers


async def test_the_dashboard_page_has_no_inline_script_or_style(
    client: httpx.AsyncClient,
) -> None:
    page = (await client.get("/")).text
    assert "<script" in page
    for tag in page.split("<script")[1:]:
        assert 'src="' in tag.split(">")[0], "an inline script would need 'unsafe-inline'"
    assert "<style" not in page and "style=" not in page and "onclick=" not in page


async def test_swagger_ui_is_off_unless_asked_for(
    client: httpx.AsyncClient, clinic: Clinic, tokens: TokenIssuer, clock: FakeClock
) -> None:
    assert (await client.get("/docs")).status_code == 404
    app = create_app(
        clinic, Settings(api_docs=True), tokens=tokens, passwords=PasswordHasher(), clock=clock
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=OWN) as http:
        docs = await http.get("/docs")
    assert docs.status_code == 200
    assert "cdn.jsdelivr.net" in docs.headers["content-security-policy"]


@pytest.mark.parametrize(
    ("origin", "scheme", "host", "allowed"),
    [
        ("https://clinic.example", "https", "clinic.example", True),  # behind a TLS proxy
        ("https://clinic.example:443", "https", "clinic.example", True),
        ("http://clinic.example", "https", "clinic.example", False),
        ("https://clinic.example:8443", "https", "clinic.example", False),
        ("http://127.0.0.1:8000", "ws", "127.0.0.1:8000", True),  # the /ws handshake
        ("http://127.0.0.1:8001", "http", "127.0.0.1:8000", False),
        ("null", "http", "127.0.0.1:8000", False),
    ],
)
def test_the_origin_check_compares_scheme_host_and_port(
    origin: str, scheme: str, host: str, allowed: bool
) -> None:
    scope = {"type": "http", "scheme": scheme, "headers": [(b"host", host.encode())]}
    assert origin_allowed(origin, scope, frozenset()) is allowed

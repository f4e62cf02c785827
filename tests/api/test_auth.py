"""Logging in and staying logged in (issue #6 "Auth and roles")."""

from __future__ import annotations

import httpx

from api.deps import TOKEN_COOKIE
from api.guards import CSRF_COOKIE
from api.routes.auth import BAD_LOGIN
from tests.api.conftest import PASSWORD, FakeClock
from vitalsd.clinic import Clinic
from vitalsd.domain import Role


async def log_in(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD
) -> httpx.Response:
    return await client.post("/api/auth/token", data={"username": username, "password": password})


async def test_login_returns_a_bearer_token_that_opens_the_api(client: httpx.AsyncClient) -> None:
    response = await log_in(client, "nurse")
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    me = await client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.json()["username"] == "nurse"
    assert me.json()["role"] == "nurse"


async def test_login_with_a_wrong_password_is_401(client: httpx.AsyncClient) -> None:
    response = await log_in(client, "nurse", "not the password")
    assert response.status_code == 401
    assert response.json() == {"detail": BAD_LOGIN}


async def test_login_of_an_unknown_user_is_the_same_401(client: httpx.AsyncClient) -> None:
    response = await log_in(client, "nobody")
    assert response.status_code == 401
    assert response.json() == {"detail": BAD_LOGIN}


async def test_login_without_the_form_fields_is_422_naming_them(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/auth/token", data={"username": "nurse"})
    assert response.status_code == 422
    assert ["body", "password"] in [error["loc"] for error in response.json()["detail"]]


async def test_cookie_login_sets_an_httponly_cookie_that_authenticates(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/auth/token?cookie=true", data={"username": "clinician", "password": PASSWORD}
    )
    set_cookie = response.headers["set-cookie"]
    assert set_cookie.startswith(f"{TOKEN_COOKIE}=")
    assert "HttpOnly" in set_cookie
    assert "SameSite=strict" in set_cookie
    assert (await client.get("/api/patients")).status_code == 200  # the client kept it


async def test_logout_clears_the_cookie(client: httpx.AsyncClient) -> None:
    await client.post(
        "/api/auth/token?cookie=true", data={"username": "nurse", "password": PASSWORD}
    )
    csrf = {"X-CSRF-Token": client.cookies[CSRF_COOKIE]}
    assert (await client.post("/api/auth/logout", headers=csrf)).status_code == 204
    assert (await client.get("/api/patients")).status_code == 401


async def test_token_is_refused_after_it_expires(
    client: httpx.AsyncClient, auth: dict[Role, dict[str, str]], clock: FakeClock
) -> None:
    clock.advance(hours=8)
    response = await client.get("/api/patients", headers=auth[Role.NURSE])
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


async def test_token_of_a_disabled_user_stops_working_at_once(
    client: httpx.AsyncClient, auth: dict[Role, dict[str, str]]
) -> None:
    disabled = await client.post("/api/users/nurse/disable", headers=auth[Role.ADMIN])
    assert disabled.json()["disabled"] is True
    response = await client.get("/api/patients", headers=auth[Role.NURSE])
    assert response.status_code == 401


async def test_admin_creates_a_user_who_can_log_in(
    client: httpx.AsyncClient, auth: dict[Role, dict[str, str]]
) -> None:
    created = await client.post(
        "/api/users",
        json={"username": "dr.lee", "password": "long enough pw", "role": "clinician"},
        headers=auth[Role.ADMIN],
    )
    assert created.status_code == 201
    assert "password_hash" not in created.json()
    assert (await log_in(client, "dr.lee", "long enough pw")).status_code == 200


async def test_creating_an_existing_user_is_409(
    client: httpx.AsyncClient, auth: dict[Role, dict[str, str]]
) -> None:
    response = await client.post(
        "/api/users",
        json={"username": "nurse", "password": "long enough pw", "role": "nurse"},
        headers=auth[Role.ADMIN],
    )
    assert response.status_code == 409


async def test_a_short_password_is_422_naming_the_field(
    client: httpx.AsyncClient, auth: dict[Role, dict[str, str]]
) -> None:
    response = await client.post(
        "/api/users",
        json={"username": "x", "password": "short", "role": "nurse"},
        headers=auth[Role.ADMIN],
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "password"]


async def test_user_list_never_shows_password_hashes(
    client: httpx.AsyncClient, auth: dict[Role, dict[str, str]], clinic: Clinic
) -> None:
    response = await client.get("/api/users", headers=auth[Role.ADMIN])
    assert {u["username"] for u in response.json()} == {"nurse", "clinician", "admin"}
    assert all("password_hash" not in u for u in response.json())


async def test_disabling_an_unknown_user_is_404(
    client: httpx.AsyncClient, auth: dict[Role, dict[str, str]]
) -> None:
    response = await client.post("/api/users/ghost/disable", headers=auth[Role.ADMIN])
    assert response.status_code == 404

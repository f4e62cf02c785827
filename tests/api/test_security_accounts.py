"""Issue #17, findings 4, 5, 6, 9 and 12 replayed: login throttling and lockout, audited
logins, revocable tokens, password change and reset, the last admin, password policy and
case-insensitive usernames."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.guards import CSRF_COOKIE
from tests.api.conftest import PASSWORD, FakeClock
from vitalsd.auth import PasswordHasher, TokenIssuer
from vitalsd.clinic import Clinic
from vitalsd.domain import Role
from vitalsd.settings import Settings

Auth = dict[Role, dict[str, str]]
NEW_PASSWORD = "a brand new passphrase"


async def log_in(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD, *, cookie: bool = False
) -> httpx.Response:
    return await client.post(
        f"/api/auth/token{'?cookie=true' if cookie else ''}",
        data={"username": username, "password": password},
    )


def bearer(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
def strict_app(
    clinic: Clinic, tmp_path: Path, clock: FakeClock, tokens: TokenIssuer, passwords: PasswordHasher
) -> FastAPI:
    settings = Settings(
        data_dir=tmp_path,
        login_rate_per_address="8/minute",
        login_failure_rate_per_user="3/minute",
        login_lockout_failures=4,
    )
    return create_app(clinic, settings, tokens=tokens, passwords=passwords, clock=clock)


@pytest.fixture
async def strict(strict_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=strict_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://vitalsd.test") as http:
        yield http


async def test_wrong_passwords_for_one_user_are_throttled_with_retry_after(
    strict: httpx.AsyncClient,
) -> None:
    codes = [(await log_in(strict, "nurse", "wrong password!")).status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    refused = await log_in(strict, "nurse")
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    # Another user from the same address is not held up by the nurse's failures.
    assert (await log_in(strict, "clinician")).status_code == 200


async def test_many_logins_from_one_address_are_throttled(strict: httpx.AsyncClient) -> None:
    names = [f"nobody{i}" for i in range(8)]
    codes = [(await log_in(strict, name)).status_code for name in names]
    assert set(codes) == {401}
    refused = await log_in(strict, "admin")
    assert refused.status_code == 429
    assert "too many login attempts" in refused.json()["detail"]


async def test_an_account_locks_after_failures_in_a_row_until_an_admin_unlocks_it(
    strict: httpx.AsyncClient, clinic: Clinic, auth: Auth
) -> None:
    for _ in range(4):
        await clinic.record_login("nurse", address="10.0.0.9", succeeded=False, lock_after=4)
    account = await clinic.get_account("nurse")
    assert account.locked
    assert (await log_in(strict, "nurse")).status_code == 401  # the right password, locked
    listed = await strict.get("/api/users", headers=auth[Role.ADMIN])
    assert {u["username"]: u["locked"] for u in listed.json()}["nurse"] is True
    unlocked = await strict.post("/api/users/nurse/unlock", headers=auth[Role.ADMIN])
    assert unlocked.status_code == 200 and unlocked.json()["locked"] is False
    assert (await log_in(strict, "nurse")).status_code == 200


async def test_every_login_failure_and_logout_is_audited_with_user_and_address(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    await log_in(client, "nurse", "not the password")
    await log_in(client, "ghost")
    token = bearer(await log_in(client, "nurse"))
    assert (await client.post("/api/auth/logout", headers=token)).status_code == 204
    audit = await client.get("/api/audit", params={"entity": "user"}, headers=auth[Role.ADMIN])
    entries = [(a["actor"], a["action"]) for a in audit.json()]
    assert entries[-4:] == [
        ("nurse", "login_failed"),
        ("ghost", "login_failed"),
        ("nurse", "login"),
        ("nurse", "logout"),
    ]
    assert all("from 127.0.0.1" in a["note"] for a in audit.json()[-4:])


async def test_logout_ends_the_cookie_and_every_bearer_token_of_the_user(
    client: httpx.AsyncClient,
) -> None:
    tablet = bearer(await log_in(client, "nurse"))
    await log_in(client, "nurse", cookie=True)
    csrf = {"X-CSRF-Token": client.cookies[CSRF_COOKIE]}
    cookie_value = client.cookies["vitalsd_token"]
    assert (await client.post("/api/auth/logout", headers=csrf)).status_code == 204
    assert (await client.get("/api/patients", headers=tablet)).status_code == 401
    client.cookies.set("vitalsd_token", cookie_value)  # replayed after the logout
    replayed = await client.get("/api/patients")
    assert replayed.status_code == 401
    assert "revoked" in replayed.json()["detail"]


async def test_a_disabled_user_enabled_again_does_not_get_the_old_token_back(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    old = bearer(await log_in(client, "nurse"))
    await client.post("/api/users/nurse/disable", headers=auth[Role.ADMIN])
    await client.post("/api/users/nurse/enable", headers=auth[Role.ADMIN])
    assert (await client.get("/api/patients", headers=old)).status_code == 401
    assert (
        await client.get("/api/patients", headers=bearer(await log_in(client, "nurse")))
    ).status_code == 200


async def test_a_user_changes_their_password_and_every_old_token_ends(
    client: httpx.AsyncClient,
) -> None:
    old = bearer(await log_in(client, "nurse"))
    wrong = await client.post(
        "/api/auth/password",
        json={"current_password": "not it at all", "new_password": NEW_PASSWORD},
        headers=old,
    )
    assert wrong.status_code == 401
    changed = await client.post(
        "/api/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=old,
    )
    assert changed.status_code == 204
    assert (await client.get("/api/patients", headers=old)).status_code == 401
    assert (await log_in(client, "nurse")).status_code == 401
    assert (await log_in(client, "nurse", NEW_PASSWORD)).status_code == 200


async def test_an_admin_resets_a_password(client: httpx.AsyncClient, auth: Auth) -> None:
    old = bearer(await log_in(client, "clinician"))
    reset = await client.post(
        "/api/users/clinician/password",
        json={"new_password": NEW_PASSWORD},
        headers=auth[Role.ADMIN],
    )
    assert reset.status_code == 200
    assert (await client.get("/api/patients", headers=old)).status_code == 401
    assert (await log_in(client, "clinician", NEW_PASSWORD)).status_code == 200


async def test_a_role_change_ends_the_users_tokens(client: httpx.AsyncClient, auth: Auth) -> None:
    old = bearer(await log_in(client, "nurse"))
    changed = await client.post(
        "/api/users/nurse/role", json={"role": "clinician"}, headers=auth[Role.ADMIN]
    )
    assert changed.status_code == 200 and changed.json()["role"] == "clinician"
    assert (await client.get("/api/patients", headers=old)).status_code == 401
    me = await client.get("/api/auth/me", headers=bearer(await log_in(client, "nurse")))
    assert me.json()["role"] == "clinician"


async def test_the_last_active_admin_cannot_be_disabled_or_demoted(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    disabled = await client.post("/api/users/admin/disable", headers=auth[Role.ADMIN])
    assert disabled.status_code == 409
    assert "last active admin" in disabled.json()["detail"]
    demoted = await client.post(
        "/api/users/admin/role", json={"role": "nurse"}, headers=auth[Role.ADMIN]
    )
    assert demoted.status_code == 409
    # With a second admin, the first may go.
    created = await client.post(
        "/api/users",
        json={"username": "second.admin", "password": NEW_PASSWORD, "role": "admin"},
        headers=auth[Role.ADMIN],
    )
    assert created.status_code == 201
    assert (
        await client.post("/api/users/admin/disable", headers=auth[Role.ADMIN])
    ).status_code == 200


@pytest.mark.parametrize(
    "password", ["password", "12345678", "        ", "password1234", "123456789012", "aaaaaaaaaaaa"]
)
async def test_a_weak_new_password_is_refused(
    client: httpx.AsyncClient, auth: Auth, password: str
) -> None:
    response = await client.post(
        "/api/users",
        json={"username": "newbie", "password": password, "role": "nurse"},
        headers=auth[Role.ADMIN],
    )
    assert response.status_code == 422


async def test_usernames_ignore_case(client: httpx.AsyncClient, auth: Auth) -> None:
    twin = await client.post(
        "/api/users",
        json={"username": "Nurse", "password": NEW_PASSWORD, "role": "nurse"},
        headers=auth[Role.ADMIN],
    )
    assert twin.status_code == 409
    login = await log_in(client, "NURSE")
    assert login.status_code == 200
    assert login.json()["username"] == "nurse"


@pytest.mark.parametrize("username", ["nurse ann", "Alex\u202e", "x" * 65, "-dash"])
async def test_a_username_outside_the_allowed_characters_is_refused(
    client: httpx.AsyncClient, auth: Auth, username: str
) -> None:
    response = await client.post(
        "/api/users",
        json={"username": username, "password": NEW_PASSWORD, "role": "nurse"},
        headers=auth[Role.ADMIN],
    )
    assert response.status_code == 422

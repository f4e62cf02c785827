"""Who may call what (issue #6 "Auth and roles"): every route but the login and the
health check wants a token (401 without), and a role without the permission gets 403,
both with a JSON body."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from fastapi.routing import APIRoute

from api.app import REST_ROUTERS, create_app
from tests.api.conftest import SECRET, T0, FakeClock, open_clinic
from vitalsd.auth import PasswordHasher, Permission, TokenIssuer, role_may
from vitalsd.domain import Role
from vitalsd.settings import Settings

PUBLIC = {
    ("POST", "/api/auth/token"),
    ("GET", "/healthz"),
    # A notification's service worker: no access token, the notification's own signed
    # action token in the body instead (tests/api/test_push.py).
    ("POST", "/api/push/receipts"),
    ("POST", "/api/push/actions/acknowledge"),
}
ANY_ROLE = "any role"

# (method, path) -> what it takes. Every route of ours must be listed (checked below).
REQUIRED: dict[tuple[str, str], Permission | str] = {
    ("POST", "/api/auth/logout"): ANY_ROLE,
    ("GET", "/api/auth/me"): ANY_ROLE,
    ("POST", "/api/auth/password"): ANY_ROLE,
    ("POST", "/api/auth/ws-ticket"): ANY_ROLE,
    ("GET", "/api/users"): Permission.MANAGE_USERS,
    ("POST", "/api/users"): Permission.MANAGE_USERS,
    ("POST", "/api/users/{username}/disable"): Permission.MANAGE_USERS,
    ("POST", "/api/users/{username}/enable"): Permission.MANAGE_USERS,
    ("POST", "/api/users/{username}/password"): Permission.MANAGE_USERS,
    ("POST", "/api/users/{username}/role"): Permission.MANAGE_USERS,
    ("POST", "/api/users/{username}/unlock"): Permission.MANAGE_USERS,
    ("POST", "/api/patients"): Permission.MANAGE_PATIENTS,
    ("GET", "/api/patients"): Permission.READ,
    ("GET", "/api/patients/{patient_id}"): Permission.READ,
    ("GET", "/api/patients/{patient_id}/sessions"): Permission.READ,
    ("GET", "/api/patients/{patient_id}/readings"): Permission.READ,
    ("POST", "/api/chairs"): Permission.MANAGE_EQUIPMENT,
    ("GET", "/api/chairs"): Permission.READ,
    ("GET", "/api/chairs/{chair_id}"): Permission.READ,
    ("PUT", "/api/chairs/{chair_id}/cuff"): Permission.MANAGE_EQUIPMENT,
    ("DELETE", "/api/chairs/{chair_id}/cuff"): Permission.MANAGE_EQUIPMENT,
    ("PATCH", "/api/chairs/{chair_id}"): Permission.MANAGE_EQUIPMENT,
    ("POST", "/api/chairs/{chair_id}/retire"): Permission.MANAGE_EQUIPMENT,
    ("GET", "/api/protocols"): Permission.READ,
    ("GET", "/api/protocols/{name}"): Permission.READ,
    ("GET", "/api/devices"): Permission.READ,
    ("GET", "/api/devices/{address}"): Permission.READ,
    ("POST", "/api/devices/{address}/assign"): Permission.MANAGE_EQUIPMENT,
    ("POST", "/api/sessions"): Permission.RUN_SESSIONS,
    ("GET", "/api/sessions"): Permission.READ,
    ("GET", "/api/sessions/{session_id}"): Permission.READ,
    ("POST", "/api/sessions/{session_id}/doses"): Permission.RUN_SESSIONS,
    ("GET", "/api/sessions/{session_id}/doses"): Permission.READ,
    ("POST", "/api/sessions/{session_id}/doses/{dose_id}/stop"): Permission.RUN_SESSIONS,
    ("POST", "/api/sessions/{session_id}/side-effects"): Permission.RECORD_OBSERVATIONS,
    ("GET", "/api/sessions/{session_id}/side-effects"): Permission.READ,
    ("POST", "/api/sessions/{session_id}/readings"): Permission.RECORD_OBSERVATIONS,
    ("GET", "/api/sessions/{session_id}/readings"): Permission.READ,
    ("GET", "/api/sessions/{session_id}/checks"): Permission.READ,
    ("POST", "/api/sessions/{session_id}/checks/{check_id}/waive"): Permission.RUN_SESSIONS,
    ("POST", "/api/sessions/{session_id}/close"): Permission.RUN_SESSIONS,
    ("GET", "/api/readings"): Permission.READ,
    ("GET", "/api/readings/{reading_id}"): Permission.READ,
    ("POST", "/api/checks/{check_id}/waive"): Permission.RUN_SESSIONS,
    ("GET", "/api/alerts"): Permission.READ,
    ("GET", "/api/alerts/history"): Permission.READ,
    ("GET", "/api/alerts/{alert_id}"): Permission.READ,
    ("GET", "/api/alerts/{alert_id}/receipts"): Permission.READ,
    ("POST", "/api/alerts/{alert_id}/acknowledge"): Permission.ACKNOWLEDGE_ALERTS,
    ("POST", "/api/alerts/{alert_id}/snooze"): Permission.ACKNOWLEDGE_ALERTS,
    ("POST", "/api/alerts/{alert_id}/resolve"): Permission.RESOLVE_ALERTS,
    ("GET", "/api/audit"): Permission.READ_AUDIT,
    ("GET", "/api/sessions/{session_id}/report"): Permission.EXPORT_RECORDS,
    ("GET", "/api/sessions/{session_id}/report.pdf"): Permission.EXPORT_RECORDS,
    ("GET", "/api/sessions/{session_id}/rems"): Permission.EXPORT_RECORDS,
    ("GET", "/api/sessions/{session_id}/fhir"): Permission.EXPORT_RECORDS,
    ("GET", "/api/sessions/{session_id}/readings.csv"): Permission.EXPORT_RECORDS,
    ("GET", "/api/exports/readings.csv"): Permission.EXPORT_CLINIC,
    # issue #14: admission, history, the clinic's exports, the REMS form page
    ("GET", "/api/exports/fhir"): Permission.EXPORT_CLINIC,
    ("GET", "/api/sessions/{session_id}/rems.html"): Permission.EXPORT_RECORDS,
    ("GET", "/api/patients/{patient_id}/history"): Permission.READ,
    ("POST", "/api/admissions"): Permission.RUN_SESSIONS,
    ("GET", "/api/push/vapid-public-key"): ANY_ROLE,
    ("GET", "/api/push/subscriptions"): ANY_ROLE,
    ("POST", "/api/push/subscriptions"): ANY_ROLE,
    ("DELETE", "/api/push/subscriptions/{subscription_id}"): ANY_ROLE,
}

# "ghost" does not exist: a permitted call may not disable a user the other calls use.
SAMPLE_PATH_VALUES = {"username": "ghost", "address": "C0:FF:EE:00:00:01"}

# One app for the whole module: no request here changes what another one sees (none
# reaches a handler that writes, and the sample path values name nothing that exists).
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(
    tmp_path_factory: pytest.TempPathFactory,
    database_template: Path,
    passwords: PasswordHasher,
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[Role, dict[str, str]]]]:
    directory = tmp_path_factory.mktemp("access")
    clock = FakeClock(T0)
    tokens = TokenIssuer(SECRET)
    clinic = await open_clinic(database_template, directory, clock=clock)
    app = create_app(
        clinic, Settings(data_dir=directory), tokens=tokens, passwords=passwords, clock=clock
    )
    auth = {
        role: {"Authorization": f"Bearer {tokens.issue(role.value, role, clock())}"}
        for role in Role
    }
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://vitalsd.test") as client:
        yield client, auth
    await clinic.close()


Shared = tuple[httpx.AsyncClient, dict[Role, dict[str, str]]]


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE_PATH_VALUES.get(m.group(1), "1"), path)


async def test_every_route_is_in_the_access_table() -> None:
    routes = {
        (method, route.path)
        for router in REST_ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    assert routes == set(REQUIRED) | PUBLIC


@pytest.mark.parametrize(("method", "path"), sorted(REQUIRED))
async def test_route_without_token_is_401_with_json_reason(
    shared: Shared, method: str, path: str
) -> None:
    client, _ = shared
    response = await client.request(method, concrete(path))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "token" in response.json()["detail"]


FORBIDDEN = [
    (method, path, role)
    for (method, path), needed in sorted(REQUIRED.items())
    if needed != ANY_ROLE
    for role in Role
    if not role_may(role, Permission(needed))
]


@pytest.mark.parametrize(("method", "path", "role"), FORBIDDEN)
async def test_route_refuses_a_role_without_the_permission_with_403(
    shared: Shared, method: str, path: str, role: Role
) -> None:
    client, auth = shared
    response = await client.request(method, concrete(path), headers=auth[role])
    assert response.status_code == 403
    assert f"role {role.value} may not" in response.json()["detail"]


# Logging out ends every token of the user, the shared ones here included: it has its
# own tests (tests/api/test_sessions_revoked.py).
ENDS_THE_TOKEN = {("POST", "/api/auth/logout")}
ALLOWED = [
    (method, path, role)
    for (method, path), needed in sorted(REQUIRED.items())
    if (method, path) not in ENDS_THE_TOKEN
    for role in Role
    if needed == ANY_ROLE or role_may(role, Permission(needed))
]


@pytest.mark.parametrize(("method", "path", "role"), ALLOWED)
async def test_route_lets_a_permitted_role_past_authorisation(
    shared: Shared, method: str, path: str, role: Role
) -> None:
    """Past the door, the request fails or succeeds on its merits (no record 1 exists,
    no body was sent), never on the role."""
    client, auth = shared
    response = await client.request(method, concrete(path), headers=auth[role])
    assert response.status_code not in (401, 403, 500)

"""schemathesis against the app's own OpenAPI document: for generated requests, valid
and invalid, no 500 and no response outside the documented statuses, media types and
schemas (issue #6, "Tests"); every operation with a nurse's, a clinician's and an
admin's token, and methods a path does not have answered 405 with `Allow` (issue #17)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    ignored_auth,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from api.app import create_app
from tests.api.conftest import ADMIN, CUFF, T0, FakeClock, open_clinic
from tests.api.test_access import ANY_ROLE, REQUIRED
from vitalsd.auth import PasswordHasher, Permission, TokenIssuer, role_may
from vitalsd.clinic import Actor, Clinic
from vitalsd.domain import Role
from vitalsd.settings import Settings
from vitalsd.store.engine import create_engine

# Examples per operation (about 40 operations): the run stays under a minute.
EXAMPLES = 4
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    unsupported_method,
    allow_header_conformance,
    ignored_auth,
]


class LiveApi(threading.Thread):
    """The app under uvicorn in a thread with its own event loop (where its database
    engine lives), on a socket bound here, with a patient in session and an alert."""

    def __init__(self, template: Path, directory: Path, tokens: TokenIssuer) -> None:
        super().__init__(daemon=True)
        self.template, self.directory, self.tokens = template, directory, tokens
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.ready = threading.Event()
        self.server: uvicorn.Server | None = None

    def run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        clock = FakeClock(T0)
        clinic = await open_clinic(self.template, self.directory, clock=clock)
        patient = await clinic.create_patient("MRN-1", "Alex Doe", date(1980, 6, 1), by=ADMIN)
        chair = await clinic.create_chair("Chair 1", by=ADMIN)
        await clinic.assign_cuff(chair.id, CUFF, by=ADMIN)
        session = await clinic.start_session(patient.id, chair.id, by=Actor("c", Role.CLINICIAN))
        await clinic.record_manual_reading(
            session.id, systolic=185, diastolic=112, by=Actor("n", Role.NURSE)
        )
        app = create_app(
            clinic,
            Settings(data_dir=self.directory),
            tokens=self.tokens,
            passwords=PasswordHasher(),
            clock=clock,
        )
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="off"))
        serving = asyncio.create_task(self.server.serve(sockets=[self.listener]))
        while not self.server.started and not serving.done():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        self.ready.set()
        await serving
        await clinic.close()

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        self.join(timeout=30)


@pytest.fixture(scope="module")
def live_api(
    tmp_path_factory: pytest.TempPathFactory, database_template: Path
) -> Iterator[LiveApi]:
    api = LiveApi(
        database_template,
        tmp_path_factory.mktemp("fuzz"),
        TokenIssuer(b"schema-fuzz-secret-schema-fuzz-s"),
    )
    api.start()
    assert api.ready.wait(timeout=60), "the API did not start"
    yield api
    api.stop()


def openapi_document() -> dict[str, Any]:
    """The app's OpenAPI document; building it touches no database."""
    unused = Clinic(create_engine("sqlite+aiosqlite://"))
    app = create_app(unused, Settings(), tokens=TokenIssuer(b"x" * 32), passwords=PasswordHasher())
    return app.openapi()


def permitted_role(method: str, path: str) -> Role:
    """A role the route lets in, so that the request reaches the handler."""
    needed = REQUIRED.get((method.upper(), path), Permission.READ)
    if needed == ANY_ROLE:
        return Role.NURSE
    permission = Permission(needed)
    if permission is Permission.READ:
        return Role.CLINICIAN
    return next(role for role in Role if role_may(role, permission))


# Logging out ends every token of the user, so the rest of the run would only see 401s:
# tests/api/test_security_accounts.py covers it.
schema = schemathesis.openapi.from_dict(openapi_document()).exclude(path="/api/auth/logout")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests_get_documented_answers_and_never_a_500(
    case: schemathesis.Case[Any], live_api: LiveApi
) -> None:
    role = permitted_role(case.method, case.path)
    token = live_api.tokens.issue(role.value, role, FakeClock(T0)())
    case.call_and_validate(
        base_url=live_api.url, headers={"Authorization": f"Bearer {token}"}, checks=CHECKS
    )


@pytest.mark.parametrize("role", list(Role))
@schema.parametrize()
@settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_role_gets_documented_answers_from_every_operation(
    case: schemathesis.Case[Any], live_api: LiveApi, role: Role
) -> None:
    """A nurse, a clinician and an admin each call every operation: allowed or 403,
    never a 500 or an undocumented answer."""
    token = live_api.tokens.issue(role.value, role, FakeClock(T0)())
    case.call_and_validate(
        base_url=live_api.url, headers={"Authorization": f"Bearer {token}"}, checks=CHECKS
    )

"""The FastAPI application: REST under `/api`, the `/ws` stream, `/healthz`, and the
dashboard's static files at `/`.

`create_app` takes the running clinic service and settings; it starts nothing itself
(the daemon owns the event loop, the radio and the timers), so a test builds an app on a
real database in one line.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Final

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from api.deps import ApiContext, BleStatus, ble_not_running
from api.errors import install_error_handlers
from api.handshake import DEFAULT_HANDSHAKE, AccountCache, HandshakeLimits, SnapshotCache
from api.routes import auth, equipment, health, patients, records, sessions, users
from api.stream import DEFAULT_QUEUE_SIZE, RawSendMiddleware, StreamHub
from api.ws import router as ws_router
from vitalsd.auth import PasswordHasher, TokenIssuer
from vitalsd.clinic import Clinic, utc_now
from vitalsd.settings import Settings

log = logging.getLogger(__name__)

STATIC_DIR: Final = Path(__file__).parent / "static"
# Request bodies here are small JSON objects; 64 KiB is generous and bounds memory.
MAX_BODY_BYTES: Final = 64 * 1024
# Routers that other engineers add under api/ (issue #8's exports), included when present.
OPTIONAL_ROUTERS: Final = ("api.exports_routes",)


# The REST API of issue #6, in the order the OpenAPI document lists it.
REST_ROUTERS: Final = (
    health.router,
    auth.router,
    users.router,
    patients.router,
    equipment.chairs,
    equipment.devices,
    sessions.router,
    records.readings,
    records.checks,
    records.alerts,
    records.audit,
)


def create_app(
    clinic: Clinic,
    settings: Settings,
    *,
    tokens: TokenIssuer,
    passwords: PasswordHasher | None = None,
    clock: Callable[[], datetime] = utc_now,
    ble_status: BleStatus = ble_not_running,
    stream_queue_size: int = DEFAULT_QUEUE_SIZE,
    handshake: HandshakeLimits = DEFAULT_HANDSHAKE,
    static_dir: Path = STATIC_DIR,
) -> FastAPI:
    """The app for one clinic service. `tokens` signs and checks access tokens (see
    `vitalsd.auth.token_issuer_for(settings)`); `ble_status` reports the radio for
    `/healthz`; `stream_queue_size` bounds each WebSocket client's backlog; `handshake`
    how `/ws` connects share work (api/handshake.py)."""
    app = FastAPI(
        title="vitalsd",
        summary="Blood pressure during ketamine and esketamine treatment sessions",
        version="0.1.0",
        max_body_size=MAX_BODY_BYTES,
    )
    # One bound for every connect's database work (user lookups and snapshots).
    handshakes = asyncio.Semaphore(handshake.db_work)
    accounts = AccountCache(clinic, handshakes, ttl_s=handshake.account_ttl_s)
    app.state.context = ApiContext(
        clinic=clinic,
        settings=settings,
        tokens=tokens,
        passwords=passwords or PasswordHasher(),
        hub=StreamHub(queue_size=stream_queue_size, clock=clock, account_check=accounts.refusal),
        clock=clock,
        accounts=accounts,
        snapshots=SnapshotCache(clinic, handshakes, max_age_s=handshake.snapshot_max_age_s),
        ble_status=ble_status,
    )
    install_error_handlers(app)
    app.add_middleware(RawSendMiddleware)  # lets /ws write frames without an await each
    for router in (*REST_ROUTERS, ws_router, *_optional_routers()):
        app.include_router(router)

    @app.api_route(
        "/api/{path:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
    )
    async def no_such_route(path: str) -> JSONResponse:
        """Unknown API paths get a JSON 404, not the dashboard's."""
        return JSONResponse({"detail": f"no route /api/{path}"}, status_code=404)

    if static_dir.is_dir():
        app.mount("/", StaticFiles(directory=static_dir, html=True), name="dashboard")
    else:
        log.warning("no dashboard at %s: serving the API only", static_dir)
    return app


def _optional_routers() -> list[APIRouter]:
    found: list[APIRouter] = []
    for name in OPTIONAL_ROUTERS:
        if importlib.util.find_spec(name) is None:
            continue
        router = getattr(importlib.import_module(name), "router", None)
        if isinstance(router, APIRouter):
            found.append(router)
        else:
            log.warning("%s has no APIRouter named router; not served", name)
    return found

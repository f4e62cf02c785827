"""The FastAPI application: REST under `/api`, the `/ws` stream, `/healthz`, and the
dashboard's static files at `/`.

`create_app` takes the running clinic service and settings; it starts nothing itself
(the daemon owns the event loop, the radio and the timers), so a test builds an app on a
real database in one line.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Final

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request

from api.deps import ApiContext, BleStatus, ble_not_running
from api.errors import install_error_handlers
from api.guards import RequestGuard
from api.handshake import DEFAULT_HANDSHAKE, AccountCache, HandshakeLimits, SnapshotCache
from api.headers import SecurityHeaders
from api.logredact import install_redaction
from api.routes import (
    admissions,
    auth,
    equipment,
    exports,
    health,
    patients,
    protocols,
    records,
    sessions,
    users,
)
from api.routes import notify as notify_routes
from api.routes import push as push_routes
from api.routes.alert_history import router as alert_history_router
from api.stream import DEFAULT_QUEUE_SIZE, RawSendMiddleware, StreamHub
from api.throttle import LoginThrottle
from api.tickets import TicketBook
from api.ws import router as ws_router
from vitalsd.auth import PasswordHasher, TokenIssuer
from vitalsd.clinic import Clinic, utc_now
from vitalsd.settings import Settings

log = logging.getLogger(__name__)

STATIC_DIR: Final = Path(__file__).parent / "static"
# Request bodies here are small JSON objects; 64 KiB is generous and bounds memory.
MAX_BODY_BYTES: Final = 64 * 1024
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
    alert_history_router,  # before records.alerts: /history is not an alert id
    records.alerts,
    records.audit,
    exports.router,
    protocols.router,
    admissions.router,
    push_routes.router,  # issue #15: Web Push devices, receipts, notification actions
    notify_routes.router,
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
        # Swagger UI loads its script from a CDN: only when the clinic asks for it.
        docs_url="/docs" if settings.api_docs else None,
        redoc_url=None,
    )
    install_redaction()
    # One bound for every connect's database work (user lookups and snapshots).
    handshakes = asyncio.Semaphore(handshake.db_work)
    accounts = AccountCache(clinic, handshakes, ttl_s=handshake.account_ttl_s)
    app.state.context = ApiContext(
        clinic=clinic,
        settings=settings,
        tokens=tokens,
        passwords=passwords or PasswordHasher(),
        hub=StreamHub(
            queue_size=stream_queue_size,
            clock=clock,
            account_check=accounts.refusal,
            recheck_s=handshake.recheck_s,
        ),
        clock=clock,
        accounts=accounts,
        snapshots=SnapshotCache(clinic, handshakes, max_age_s=handshake.snapshot_max_age_s),
        throttle=LoginThrottle(
            settings.login_rate_per_address, settings.login_failure_rate_per_user
        ),
        tickets=TicketBook(clock),
        ble_status=ble_status,
    )
    install_error_handlers(app)
    app.add_middleware(RawSendMiddleware)  # lets /ws write frames without an await each
    # Outermost last: headers go on every answer, the guard's refusals included.
    app.add_middleware(
        RequestGuard, csrf_key=tokens.secret, allowed_origins=settings.allowed_origins
    )
    app.add_middleware(SecurityHeaders)
    for router in (*REST_ROUTERS, ws_router):
        app.include_router(router)

    @app.api_route(
        "/api/{path:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        include_in_schema=False,
    )
    async def no_such_route(path: str, request: Request) -> JSONResponse:
        """Unknown API paths get a JSON 404, not the dashboard's; a known path asked
        with another method a 405 naming the methods it has (RFC 9110 15.5.6)."""
        allowed = _methods_of(app, request.url.path)
        if allowed:
            return JSONResponse(
                {"detail": f"method {request.method} not allowed; {', '.join(allowed)} are"},
                status_code=405,
                headers={"Allow": ", ".join(allowed)},
            )
        return JSONResponse({"detail": f"no route /api/{path}"}, status_code=404)

    if static_dir.is_dir():
        app.mount("/", StaticFiles(directory=static_dir, html=True), name="dashboard")
    else:
        log.warning("no dashboard at %s: serving the API only", static_dir)
    return app


def _methods_of(app: FastAPI, path: str) -> list[str]:
    """The methods the API documents at `path` (its OpenAPI document is what it serves)."""
    methods: set[str] = set()
    for template, operations in app.openapi()["paths"].items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            methods |= {method.upper() for method in operations}
    return sorted(methods)

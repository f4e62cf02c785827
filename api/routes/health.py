"""`GET /healthz`: no auth; is the database answering, what is the radio doing (the
details for a signed-in admin only)."""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse
from starlette.requests import Request

from api.deps import ApiContext, Context, authenticate, token_of
from api.schemas import DatabaseHealth, Health, StreamHealth
from vitalsd.auth import Permission, role_may
from vitalsd.domain import Role

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get(
    "/healthz",
    response_model=Health,
    responses={
        503: {
            "model": Health,
            "description": "The database does not answer, or this node does not follow "
            "the other daemons' events",
        }
    },
)
async def health(request: Request, context: Context) -> JSONResponse:
    """`ok` or `degraded` for anyone (a load balancer, a monitor); what is wrong in
    detail (database, radio, streams) only for a signed-in admin (issue #17)."""
    clinic = context.clinic
    dialect = clinic.database_dialect
    try:
        database = DatabaseHealth(ok=True, dialect=dialect, last_seq=await clinic.bus.last_seq())
    except Exception as error:  # the point of a health check: report, never raise
        log.warning("health check: database unavailable: %s", error)
        database = DatabaseHealth(ok=False, dialect=dialect, error=type(error).__name__)
    try:
        ble = dict(context.ble_status())
    except Exception as error:
        ble = {"state": "unknown", "error": type(error).__name__}
    feed = clinic.bus.feed_report()  # #16: not following the group is degraded too
    ok = database.ok and (feed is None or feed["state"] == "live")
    status: Literal["ok", "degraded"] = "ok" if ok else "degraded"
    body = Health(status=status)
    role = await _role_of(request, context)
    if role is not None:
        # A signed-in dashboard compares the event log's head with its own `since`.
        body = Health(status=status, last_seq=database.last_seq)
    admin = role is not None and role_may(role, Permission.MANAGE_USERS)
    if admin or context.settings.public_health_details:
        body = Health(
            status=status,
            last_seq=database.last_seq,
            database=database,
            ble=ble,
            streams=StreamHealth(
                clients=context.hub.clients,
                cut_off=context.hub.cut_off,
                watching=context.hub.watching,
            ),
            feed=feed,
        )
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True),
        status_code=200 if ok else 503,
        headers={"Cache-Control": "no-store"},
    )


async def _role_of(request: Request, context: ApiContext) -> Role | None:
    """The caller's role if signed in (None: anonymous, or the token does not hold)."""
    token = token_of(request)
    if token is None:
        return None
    try:
        user, _claims = await authenticate(context, token)
    except HTTPException:
        return None
    except Exception as error:  # the database may be what is down: no details then
        log.warning("health check: could not check the caller: %s", error)
        return None
    return user.role

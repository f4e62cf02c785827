"""`GET /healthz`: no auth; is the database answering, what is the radio doing."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import Context
from api.schemas import DatabaseHealth, Health, StreamHealth

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "The database does not answer"}},
)
async def health(context: Context) -> JSONResponse:
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
    body = Health(
        status="ok" if database.ok else "degraded",
        database=database,
        ble=ble,
        streams=StreamHealth(clients=context.hub.clients, cut_off=context.hub.cut_off),
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if database.ok else 503)

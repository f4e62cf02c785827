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
    responses={
        503: {
            "model": Health,
            "description": "The database does not answer, or this node does not follow "
            "the other daemons' events",
        }
    },
)
async def health(context: Context) -> JSONResponse:
    clinic = context.clinic
    dialect = clinic.engine.dialect.name
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
    body = Health(
        status="ok" if ok else "degraded",
        database=database,
        ble=ble,
        streams=StreamHealth(clients=context.hub.clients, cut_off=context.hub.cut_off),
        feed=feed,
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if ok else 503)

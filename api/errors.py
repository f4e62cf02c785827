"""Every failure a client can cause becomes a JSON error with a status that says whose fault.

Domain errors from the clinic service map to 404 / 409 / 403 / 422 (their `reason` is the
message); anything unexpected is logged and answered with a JSON 500 rather than a bare
traceback, though the tests hold that no request reaches it.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from vitalsd.errors import Conflict, DomainError, InvalidInput, NotAllowed, NotFound

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    """The body of every 401, 403, 404 and 409 (FastAPI's own `{"detail": ...}` shape)."""

    detail: str


# Documented on every route so that the OpenAPI schema tells clients what to expect.
# Errors are JSON whatever the route serves (an HTML report's 403 is JSON too), so the
# JSON media type is named even on routes whose own answer is HTML, PDF or CSV.
def _json() -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}


AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {
        "model": ErrorBody,
        "description": "No token, or an invalid or expired one",
        "content": _json(),
    },
    403: {"model": ErrorBody, "description": "The user's role may not do this", "content": _json()},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such record", "content": _json()},
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ErrorBody,
        "description": "The action contradicts the current state",
        "content": _json(),
    },
}


def status_for(error: DomainError) -> int:
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, Conflict):
        return 409
    if isinstance(error, NotAllowed):
        return 403
    if isinstance(error, InvalidInput):
        return 422
    return 400


async def _domain_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, DomainError)
    status = status_for(error)
    if status == 422:
        # Same shape as FastAPI's own validation errors, so a client parses one format.
        detail: object = [{"loc": ["body"], "msg": error.reason, "type": "value_error"}]
        return JSONResponse({"detail": detail}, status_code=422)
    return JSONResponse({"detail": error.reason}, status_code=status)


# A lost database connection is nobody's fault and passes (issue #16): 503, try again in
# this many seconds (the writer and the readers' pool reconnect on their next use).
RETRY_AFTER_S = 1


async def _database_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, DBAPIError)
    if error.connection_invalidated:
        return await _database_unreachable(request, error)
    # A value the database refuses (out of its integer range, say) is the client's input.
    log.warning("database refused %s %s: %s", request.method, request.url.path, error)
    return JSONResponse({"detail": "the database refused this request"}, status_code=409)


async def _database_unreachable(request: Request, error: Exception) -> JSONResponse:
    """The connection was lost, or a new one refused: 503 with `Retry-After`."""
    log.warning("database unreachable in %s %s: %s", request.method, request.url.path, error)
    return JSONResponse(
        {"detail": "the database cannot be reached; try again shortly"},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.exception("unhandled error in %s %s", request.method, request.url.path)
    return JSONResponse({"detail": "internal error; it has been logged"}, status_code=500)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    # FastAPI's default handler echoes `input` and `ctx`, which may hold values that do
    # not serialise (bytes, exceptions); keep location, message and type.
    detail = [
        {"loc": list(item.get("loc", ())), "msg": str(item.get("msg", "")), "type": item["type"]}
        for item in error.errors()
    ]
    return JSONResponse({"detail": detail}, status_code=422)


# What FastAPI says (with status 400) when a body is not text it can decode.
_UNPARSABLE_BODY = "There was an error parsing the body"


async def _http_error(request: Request, error: Exception) -> Response:
    """A body that cannot be parsed at all is bad input like any other: 422, naming the
    body, rather than FastAPI's bare 400."""
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 400 and error.detail == _UNPARSABLE_BODY:
        detail = [
            {"loc": ["body"], "msg": "the body is not valid UTF-8 JSON", "type": "json_invalid"}
        ]
        return JSONResponse({"detail": detail}, status_code=422)
    return await http_exception_handler(request, error)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DBAPIError, _database_error)
    # Raised as is by the driver when a new connection cannot be made (refused, reset).
    app.add_exception_handler(ConnectionError, _database_unreachable)
    app.add_exception_handler(Exception, _unexpected)

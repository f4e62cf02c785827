"""`/ws`: the event stream (DESIGN.md "Interfaces": WebSocket `/ws`).

Query parameters: `since=SEQ` (replay every stored event after SEQ, then live),
`types=alert,alert_updated` (only these types; a nurse's pager view), `token=` (browsers
cannot set headers on a WebSocket; a bearer header or the dashboard's cookie work too).
The first message is always the `snapshot`; its `data.seq` is the last stored event it
reflects, so a client that connected without `since` resumes from there.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse
from starlette.websockets import WebSocket

from api.deps import ApiContext, authenticate, forbidden, get_context, token_of
from api.stream import RAW_SEND_KEY, ClientStream, Frame, direct_writer
from vitalsd.auth import Permission, role_may
from vitalsd.store.events import EventType

router = APIRouter()

STREAM_TYPES = frozenset(t.value for t in EventType)
# RFC 6455 7.4.1: 1008 "Policy Violation", for servers without HTTP denial responses.
CLOSE_POLICY_VIOLATION = 1008


class StreamRequestError(ValueError):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def parse_since(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        since = int(raw)
    except ValueError:
        raise StreamRequestError(422, f"since must be a sequence number, got {raw!r}") from None
    if since < 0:
        raise StreamRequestError(422, "since must be 0 or more")
    return since


def parse_types(raw: str | None) -> frozenset[str] | None:
    if raw is None or raw.strip() == "":
        return None
    wanted = frozenset(part.strip() for part in raw.split(",") if part.strip())
    unknown = sorted(wanted - STREAM_TYPES)
    if unknown:
        raise StreamRequestError(
            422,
            f"unknown event types {', '.join(unknown)} (one of {', '.join(sorted(STREAM_TYPES))})",
        )
    return wanted


async def deny(websocket: WebSocket, status: int, detail: str) -> None:
    """Refuse before accepting: an HTTP error with a JSON body where the server allows it
    (uvicorn does), else a close with 1008."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        response = JSONResponse({"detail": detail}, status_code=status, headers=headers)
        await websocket.send_denial_response(response)
    else:
        await websocket.close(CLOSE_POLICY_VIOLATION, detail[:123])


@router.websocket("/ws")
async def event_stream(websocket: WebSocket) -> None:
    context: ApiContext = get_context(websocket)
    try:
        since = parse_since(websocket.query_params.get("since"))
        wanted = parse_types(websocket.query_params.get("types"))
    except StreamRequestError as error:
        await deny(websocket, error.status, error.detail)
        return
    try:
        user, claims = await authenticate(
            context, token_of(websocket, allow_query=True), cached=True
        )
        if not role_may(user.role, Permission.READ):
            raise forbidden(user, Permission.READ)
    except HTTPException as error:
        await deny(websocket, error.status_code, str(error.detail))
        return
    # Shared by every client connecting while no newer event is published (api/handshake.py).
    snapshot = await context.snapshots.get(at_least=since or 0)
    if since is not None and since > snapshot.seq:
        await deny(
            websocket,
            409,
            f"since={since} is ahead of the event log (last seq {snapshot.seq}): "
            "connect without since and redraw from the snapshot",
        )
        return
    resume_from = snapshot.seq if since is None else since
    # Every stored event after `resume_from` is replayed (from the bus's memory or the
    # log), then live ones follow without gap or duplicate; `types` filters before the
    # client's queue, so a pager's queue never holds a reading.
    subscription = context.clinic.bus.subscribe(
        since=resume_from,
        types=None if wanted is None else frozenset(EventType(t) for t in wanted),
        queue_size=context.hub.queue_size,
    )
    stream = ClientStream(
        snapshot=Frame(resume_from, EventType.SNAPSHOT.value, snapshot.text),
        events=subscription,
        username=user.username,
        expires_at=claims.expires_at,
        writer=direct_writer(websocket.scope.get(RAW_SEND_KEY)),
    )
    try:
        await websocket.accept()
    except Exception:
        subscription.close()
        raise
    await context.hub.serve(websocket, stream)

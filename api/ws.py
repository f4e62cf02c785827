"""`/ws`: the event stream (DESIGN.md "Interfaces": WebSocket `/ws`).

Query parameters: `since=SEQ` (replay every stored event after SEQ, then live),
`types=alert,alert_updated` (only these types; a nurse's pager view), `site=NAME` (the
stream of that site of a clinic group, issue #16: default this daemon's site; `since` and
the snapshot's `seq` count in that site's stream; one WebSocket per site for an
all-sites view), `ticket=` (a
one-time ticket from `POST /api/auth/ws-ticket`, for a client that can send neither a
header nor the cookie), `token=` (deprecated, see the `ws_token_in_url` setting: a URL
ends up in logs). A bearer header or the dashboard's cookie is the way to sign in.
At most `max_streams_per_user` streams per user (429 beyond).
The first message is always the `snapshot`; its `data.seq` is the last stored event it
reflects, so a client that connected without `since` resumes from there.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse
from starlette.websockets import WebSocket

from api.deps import ApiContext, authenticate, forbidden, get_context, token_of
from api.stream import RAW_SEND_KEY, ClientStream, Frame, direct_writer
from vitalsd.auth import Permission, role_may
from vitalsd.store.events import EventBus, EventType

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
    # ASCII digits only: int() also reads "١٢" and "1_000", which no client means.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise StreamRequestError(422, f"since must be a sequence number, got {raw[:40]!r}")
    return int(raw)


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


def parse_site(raw: str | None, context: ApiContext) -> EventBus:
    """The stream of the site asked for (default: this daemon's site)."""
    streams = context.clinic.streams
    if raw is None or raw == "":
        return context.clinic.bus
    bus = streams.get(raw)
    if bus is None:
        known = ", ".join(sorted(streams.buses()))
        raise StreamRequestError(404, f"no site {raw[:64]!r} in this clinic group (sites: {known})")
    return bus


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
        site = parse_site(websocket.query_params.get("site"), context)
    except StreamRequestError as error:
        await deny(websocket, error.status, error.detail)
        return
    ticket = websocket.query_params.get("ticket")
    if ticket:
        token = context.tickets.redeem(ticket)
        if token is None:
            await deny(websocket, 401, "the ticket is unknown, used or expired: ask for another")
            return
    else:
        token = token_of(websocket, allow_query=True)
    try:
        user, claims = await authenticate(context, token, cached=True)
        if not role_may(user.role, Permission.READ):
            raise forbidden(user, Permission.READ)
    except HTTPException as error:
        await deny(websocket, error.status_code, str(error.detail))
        return
    slots = context.stream_slots
    cap = context.settings.max_streams_per_user
    if slots.get(user.username, 0) >= cap:
        await deny(
            websocket,
            429,
            f"{user.username} has {cap} streams open already (max_streams_per_user): "
            "close one first",
        )
        return
    # Counted from here (not from `serve`), so connects in flight count too.
    slots[user.username] = slots.get(user.username, 0) + 1
    context.accounts.stream_opened(user.username, claims.version)
    try:
        await _stream(websocket, context, user.username, claims.expires_at, since, wanted, site)
    finally:
        context.accounts.stream_closed(user.username, claims.version)
        left = slots.get(user.username, 1) - 1
        if left > 0:
            slots[user.username] = left
        else:
            slots.pop(user.username, None)


async def _stream(
    websocket: WebSocket,
    context: ApiContext,
    username: str,
    expires_at: datetime,
    since: int | None,
    wanted: frozenset[str] | None,
    bus: EventBus,
) -> None:
    # Shared by every client connecting while no newer event is published (api/handshake.py).
    snapshot = await context.snapshots.for_site(bus.site).get(at_least=since or 0)
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
    subscription = bus.subscribe(
        since=resume_from,
        types=None if wanted is None else frozenset(EventType(t) for t in wanted),
        queue_size=context.hub.queue_size,
    )
    stream = ClientStream(
        snapshot=Frame(resume_from, EventType.SNAPSHOT.value, snapshot.text),
        events=subscription,
        username=username,
        expires_at=expires_at,
        writer=direct_writer(websocket.scope.get(RAW_SEND_KEY)),
        watches_alerts=wanted is None or EventType.ALERT.value in wanted,
    )
    try:
        await websocket.accept()
    except Exception:
        subscription.close()
        raise
    await context.hub.serve(websocket, stream)

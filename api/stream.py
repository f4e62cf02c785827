"""The WebSocket hub behind `/ws`: one bounded queue per client, none able to slow another.

A client gets, in order: the `snapshot` event, every stored event after its `since`
(replayed from the event log at the pace the client reads), then live events. Live
events enter the client's queue (its bus subscription) without waiting: when the queue
is full the client has stopped reading, and it is closed with code 1013 ("try again
later") and a reason naming the last sequence number it was sent, so that it can resume
with `?since=`. The producer never waits on a client, so a stalled tablet costs the
others nothing. Every client sends the same text for an event (`Event.text`, encoded
once); a client's sender is the only task between the bus and its socket.

A client whose token expires, or whose account is disabled, is closed with 1008: at once
when this process disables it (`StreamHub.revoke`), else when `account_check` next runs
(every `recheck_s`, one check per signed-in user, not per client).

Protocol-level pings are the server's (uvicorn's `ws_ping_interval`), so a dead peer is
noticed even when no event flows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from vitalsd.store.events import Event, SubscriberOverflow, Subscription

log = logging.getLogger(__name__)

# RFC 6455 section 7.4.1 and the IANA registry: 1013 "Try Again Later".
CLOSE_TRY_AGAIN_LATER: Final = 1013
# RFC 6455 7.4.1: 1008 "Policy Violation" (here: the token expired during the stream).
CLOSE_POLICY_VIOLATION: Final = 1008
# RFC 6455 7.4.1: 1001 "Going Away" (the daemon is shutting down).
CLOSE_GOING_AWAY: Final = 1001
# A dashboard draws ~10 chairs; 1000 events is minutes of a busy clinic at full speed.
DEFAULT_QUEUE_SIZE: Final = 1000
# How long a close frame may wait behind a full socket buffer before the server gives up
# on sending it (the transport is closed either way).
CLOSE_TIMEOUT_S: Final = 30.0
# RFC 6455 5.5: a close frame's reason fits in 123 bytes.
MAX_CLOSE_REASON_BYTES: Final = 123
# How often open streams' accounts are looked up again (a disable made elsewhere than this
# process's API, e.g. the CLI or another daemon, cuts a stream off within this).
RECHECK_S: Final = 10.0


@dataclass(frozen=True, slots=True)
class Frame:
    """One message, encoded once, as sent to every client that wants it."""

    seq: int | None
    type: str
    text: str


class SlowConsumer(Exception):
    """The client's queue overflowed: it stopped reading."""


# Why a signed-in user may no longer stream (None: they still may).
AccountCheck = Callable[[str], Awaitable[str | None]]


@dataclass(frozen=True, slots=True)
class ClientStream:
    """What the hub sends one client: first the snapshot (its `seq` is where the client
    resumes from), then the events of `events`, a subscription of the clinic's bus
    (filtered by the client's `?types=`, sized by the hub's `queue_size`). The stream ends
    at `expires_at`, when the client's token does."""

    snapshot: Frame
    events: Subscription
    username: str
    expires_at: datetime | None
    writer: DirectWriter | None = None
    # It receives alerts (no `?types=`, or `alert` among them): someone is watching the
    # ward (vitalsd.dashboard_watch).
    watches_alerts: bool = True


@dataclass(eq=False)
class _Client:
    username: str
    watches_alerts: bool = True
    revoked: asyncio.Event = field(default_factory=asyncio.Event)
    reason: str = ""


class StreamHub:
    """Serves WebSocket clients and counts them (for `/healthz` and logs)."""

    def __init__(
        self,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        close_timeout_s: float = CLOSE_TIMEOUT_S,
        clock: Callable[[], datetime],
        account_check: AccountCheck | None = None,
        recheck_s: float = RECHECK_S,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.queue_size = queue_size
        self.close_timeout_s = close_timeout_s
        self._clock = clock
        self._account_check = account_check
        self._recheck_s = recheck_s
        self._by_user: dict[str, set[_Client]] = {}
        self._recheck_task: asyncio.Task[None] | None = None
        self.clients = 0
        self.cut_off = 0
        # Clients that receive alerts, and a flag set whenever that number changes (the
        # dashboard watch waits on it: a dashboard connecting resolves `nobody_watching`).
        self.watching = 0
        self.watching_changed = asyncio.Event()

    def revoke(self, username: str, reason: str) -> int:
        """Close every stream of `username` with 1008 and `reason` (e.g. the account was
        disabled); returns how many were open."""
        clients = list(self._by_user.get(username, ()))
        for client in clients:
            client.reason = reason
            client.revoked.set()
        return len(clients)

    async def serve(self, websocket: WebSocket, stream: ClientStream) -> None:
        """Run one accepted client until it leaves, falls behind, or its token expires
        or is revoked."""
        client = _Client(stream.username, stream.watches_alerts)
        progress = _Progress(stream.snapshot.seq)
        if stream.writer is not None:
            stream.events.direct = _direct(stream.writer, progress)
        sender = asyncio.create_task(_send_all(websocket, stream, progress))
        reader = asyncio.create_task(_read_until_disconnect(websocket))
        overflow = asyncio.create_task(stream.events.wait_overflow())
        watch = asyncio.create_task(self._watch(client, stream.expires_at))
        tasks = (sender, reader, overflow, watch)
        self._enter(client)
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._leave(client)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            stream.events.close()
        if _finished(overflow) or _failed_with(sender, SlowConsumer):
            self.cut_off += 1
            last = progress.last_seq or 0
            log.warning("stream client too slow; closed after seq %d", last)
            await self._close(websocket, CLOSE_TRY_AGAIN_LATER, f"too slow; resume ?since={last}")
        elif _finished(watch):
            await self._close(websocket, CLOSE_POLICY_VIOLATION, watch.result())
        elif sender.done() and not sender.cancelled() and sender.exception() is not None:
            log.error("event stream failed", exc_info=sender.exception())
            last = progress.last_seq or 0
            await self._close(websocket, CLOSE_GOING_AWAY, f"stream ended; resume ?since={last}")
        # else: the client left, or sending failed because it did.

    def _enter(self, client: _Client) -> None:
        self.clients += 1
        if client.watches_alerts:
            self.watching += 1
            self.watching_changed.set()
        self._by_user.setdefault(client.username, set()).add(client)
        if self._account_check is not None and self._recheck_task is None:
            self._recheck_task = asyncio.create_task(self._recheck_accounts())

    def _leave(self, client: _Client) -> None:
        self.clients -= 1
        if client.watches_alerts:
            self.watching -= 1
            self.watching_changed.set()
        same_user = self._by_user.get(client.username)
        if same_user is not None:
            same_user.discard(client)
            if not same_user:
                del self._by_user[client.username]
        if not self._by_user and self._recheck_task is not None:
            self._recheck_task.cancel()
            self._recheck_task = None

    async def _watch(self, client: _Client, expires_at: datetime | None) -> str:
        """The reason to close the stream with 1008: the token expired or was revoked."""
        timeout = None
        if expires_at is not None:
            timeout = max(0.0, (expires_at - self._clock()).total_seconds())
        try:
            await asyncio.wait_for(client.revoked.wait(), timeout)
        except TimeoutError:
            return "token expired; log in again"
        return client.reason

    async def _recheck_accounts(self) -> None:
        """While anyone streams: every `recheck_s`, ask once per user whether they still
        may, and revoke the streams of those who may not (disabled elsewhere: the CLI,
        another daemon)."""
        assert self._account_check is not None
        while True:
            await asyncio.sleep(self._recheck_s)
            for username in list(self._by_user):
                try:
                    reason = await self._account_check(username)
                except Exception:
                    log.exception("could not recheck the account of %s", username)
                    continue
                if reason is not None:
                    self.revoke(username, reason)

    async def _close(self, websocket: WebSocket, code: int, reason: str) -> None:
        if websocket.application_state is not WebSocketState.CONNECTED:
            return
        reason = reason.encode()[:MAX_CLOSE_REASON_BYTES].decode(errors="ignore")
        # Behind a full socket buffer the close frame waits for the client to read; a
        # client that never does is dropped when the handler returns.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(websocket.close(code, reason), self.close_timeout_s)


@dataclass(slots=True)
class _Progress:
    """The seq of the last stored event sent to one client (its resume point)."""

    last_seq: int | None


def _finished(task: asyncio.Task[object]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None


def _failed_with(task: asyncio.Task[None], kind: type[BaseException]) -> bool:
    return task.done() and not task.cancelled() and isinstance(task.exception(), kind)


def _direct(writer: DirectWriter, progress: _Progress) -> Callable[[Event], bool]:
    def send_now(event: Event) -> bool:
        try:
            if not writer(event.utf8):
                return False
        except Exception:  # this client's problem: its queue and task take over
            log.exception("direct write to a stream client failed")
            return False
        if event.seq is not None:
            progress.last_seq = event.seq
        return True

    return send_now


# A function that writes one text frame (its UTF-8 payload) to a client's socket at once,
# without awaiting; False when it cannot now (the socket's buffer is full, or it closed).
DirectWriter = Callable[[bytes], bool]
# Where `RawSendMiddleware` leaves the server's own ASGI `send` in a WebSocket's scope.
RAW_SEND_KEY: Final = "vitalsd.raw_send"


class RawSendMiddleware:
    """Keeps the server's ASGI `send` of each WebSocket connection in its scope (under
    `RAW_SEND_KEY`), before the framework wraps it, for `direct_writer`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope[RAW_SEND_KEY] = send
        await self.app(scope, receive, send)


def direct_writer(raw_send: object) -> DirectWriter | None:
    """A `DirectWriter` when the server is uvicorn with its sans-I/O `websockets`
    protocol (uvicorn's default with websockets installed, as `vitalsd serve` runs);
    None otherwise (events then go through ASGI `send`, one await per frame).

    It does what that protocol's ASGI `send` does for a text message, minus the await:
    frame the payload (and compress it, when permessage-deflate was negotiated) and write
    it to the transport, but only while the transport is not paused for a full buffer;
    so a client that stops reading still backs up into its queue and is cut off (1013).
    This is how `websockets.broadcast` writes, and what lets 1,000 clients keep up with
    the bus without 1,000 task switches per event (issue #9)."""
    try:
        from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
        from websockets.exceptions import InvalidState
    except ImportError:  # pragma: no cover
        return None
    protocol = getattr(raw_send, "__self__", None)
    if not isinstance(protocol, WebSocketsSansIOProtocol):
        return None

    def write(payload: bytes) -> bool:
        if (
            protocol.disconnected
            or protocol.close_sent
            or not protocol.handshake_complete
            or protocol.initial_response is not None
            or not protocol.writable.is_set()
            or protocol.transport.is_closing()
        ):
            return False
        try:
            protocol.conn.send_text(payload)
        except InvalidState:
            return False
        protocol.transport.write(b"".join(protocol.conn.data_to_send()))
        return True

    return write


async def _send_all(websocket: WebSocket, stream: ClientStream, progress: _Progress) -> None:
    """The snapshot, then every event as the bus hands it over: one task per client."""
    try:
        await websocket.send_text(stream.snapshot.text)
        async for event in stream.events:
            await websocket.send_text(event.text)
            if event.seq is not None:
                progress.last_seq = event.seq
    except SubscriberOverflow as overflow:
        raise SlowConsumer(str(overflow)) from overflow
    except (WebSocketDisconnect, RuntimeError, OSError):
        return


async def _read_until_disconnect(websocket: WebSocket) -> None:
    """Clients send nothing we act on; reading is how a departure is noticed."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return

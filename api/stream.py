"""The WebSocket hub behind `/ws`: one bounded queue per client, none able to slow another.

A client gets, in order: the `snapshot` event, every stored event after its `since`
(replayed from the event log at the pace the client reads), then live events. Live
events enter the client's queue without waiting: when the queue is full the client has
stopped reading, and it is closed with code 1013 ("try again later") and a reason naming
the last sequence number it was sent, so that it can resume with `?since=`. The producer
never waits on a client, so a stalled tablet costs the others nothing.

Protocol-level pings are the server's (uvicorn's `ws_ping_interval`), so a dead peer is
noticed even when no event flows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

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


@dataclass(frozen=True, slots=True)
class Frame:
    """One event, encoded once, as sent to every client that wants it."""

    seq: int | None
    type: str
    text: str


class SlowConsumer(Exception):
    """The client's queue overflowed: it stopped reading."""


@dataclass(frozen=True, slots=True)
class ClientStream:
    """What the hub sends one client: first the snapshot, then `events`.

    `events` yields the stored events after the client's `since` and then live ones;
    those with `seq <= replay_through` are the replay, read at the client's pace.
    `wanted` is the `?types=` filter (None: everything). The stream ends at `expires_at`,
    when the client's token does.
    """

    snapshot: Frame
    events: AsyncIterator[Frame]
    replay_through: int
    wanted: Collection[str] | None
    expires_at: datetime | None


class StreamHub:
    """Serves WebSocket clients and counts them (for `/healthz` and logs)."""

    def __init__(
        self,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        close_timeout_s: float = CLOSE_TIMEOUT_S,
        clock: Callable[[], datetime],
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.queue_size = queue_size
        self.close_timeout_s = close_timeout_s
        self._clock = clock
        self.clients = 0
        self.cut_off = 0

    async def serve(self, websocket: WebSocket, stream: ClientStream) -> None:
        """Run one accepted client until it leaves, falls behind, or its token expires."""
        queue: asyncio.Queue[Frame] = asyncio.Queue(maxsize=self.queue_size)
        progress = _Progress(stream.snapshot.seq)
        queue.put_nowait(stream.snapshot)
        pump = asyncio.create_task(self._pump(stream, queue))
        sender = asyncio.create_task(_send_all(websocket, queue, progress))
        reader = asyncio.create_task(_read_until_disconnect(websocket))
        expiry = asyncio.create_task(self._wait_for_expiry(stream.expires_at))
        tasks = (pump, sender, reader, expiry)
        self.clients += 1
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.clients -= 1
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await _close_iterator(stream.events)
        if _failed_with(pump, SlowConsumer):
            self.cut_off += 1
            last = progress.last_seq or 0
            log.warning("stream client too slow; closed after seq %d", last)
            await self._close(websocket, CLOSE_TRY_AGAIN_LATER, f"too slow; resume ?since={last}")
        elif _finished(expiry):
            await self._close(websocket, CLOSE_POLICY_VIOLATION, "token expired; log in again")
        elif pump.done() and not pump.cancelled():
            error = pump.exception()
            if error is not None:
                log.error("event stream failed", exc_info=error)
            last = progress.last_seq or 0
            await self._close(websocket, CLOSE_GOING_AWAY, f"stream ended; resume ?since={last}")
        # else: the client left, or sending failed because it did.

    async def _pump(self, stream: ClientStream, queue: asyncio.Queue[Frame]) -> None:
        async for frame in stream.events:
            if stream.wanted is not None and frame.type not in stream.wanted:
                continue
            if frame.seq is not None and frame.seq <= stream.replay_through:
                await queue.put(frame)  # replay: read from the log at the client's pace
            else:
                try:
                    queue.put_nowait(frame)
                except asyncio.QueueFull:
                    raise SlowConsumer from None

    async def _wait_for_expiry(self, expires_at: datetime | None) -> None:
        if expires_at is None:
            await asyncio.Event().wait()
            return
        await asyncio.sleep(max(0.0, (expires_at - self._clock()).total_seconds()))

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


def _finished(task: asyncio.Task[None]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None


def _failed_with(task: asyncio.Task[None], kind: type[BaseException]) -> bool:
    return task.done() and not task.cancelled() and isinstance(task.exception(), kind)


async def _close_iterator(events: AsyncIterator[Frame]) -> None:
    close = getattr(events, "aclose", None)
    if close is not None:
        await close()


async def _send_all(websocket: WebSocket, queue: asyncio.Queue[Frame], progress: _Progress) -> None:
    try:
        while True:
            frame = await queue.get()
            await websocket.send_text(frame.text)
            if frame.seq is not None:
                progress.last_seq = frame.seq
    except (WebSocketDisconnect, RuntimeError, OSError):
        return


async def _read_until_disconnect(websocket: WebSocket) -> None:
    """Clients send nothing we act on; reading is how a departure is noticed."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return

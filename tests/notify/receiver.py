"""A real webhook receiver for the tests and the bench: an HTTP server on a thread that
verifies every request's Standard Webhooks signature with the `standardwebhooks`
package, answers as scripted (e.g. 500 twice, then 200) and counts by `webhook-id`."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
HELD = -1  # the status noted for a request held in flight (its answer may never arrive)


@dataclass
class Delivery:
    """One request as received: its id, envelope, the answer given, when (monotonic)."""

    webhook_id: str
    envelope: dict[str, Any]
    status: int
    received_at: float
    path: str


@dataclass
class WebhookReceiver:
    secret: str = SECRET
    answers: deque[int] = field(default_factory=deque)  # scripted statuses, then 200
    deliveries: list[Delivery] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # bad or missing signatures
    hold_s: float = 0.0  # answer the first `hold_first` requests this late (in flight)
    hold_first: int = 0
    signed: bool = True  # False: take unsigned JSON (apprise's json:// posts)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _arrived: threading.Condition = field(init=False)
    _server: ThreadingHTTPServer | None = None

    def __post_init__(self) -> None:
        self._arrived = threading.Condition(self._lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hook"

    def start(self) -> WebhookReceiver:
        receiver = self
        verifier = Webhook(self.secret)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    envelope = (
                        verifier.verify(body, headers) if receiver.signed else json.loads(body)
                    )
                except WebhookVerificationError as error:
                    with receiver._lock:
                        receiver.refused.append(str(error))
                    self.send_response(401)
                    self.end_headers()
                    return
                with receiver._lock:
                    held = receiver.hold_first > 0
                    if held:
                        receiver.hold_first -= 1
                        receiver.deliveries.append(
                            Delivery(
                                headers.get("webhook-id", ""),
                                envelope,
                                HELD,
                                time.monotonic(),
                                self.path,
                            )
                        )
                        receiver._arrived.notify_all()
                if held:
                    time.sleep(receiver.hold_s)
                    with contextlib.suppress(OSError):  # the sender may be dead by now
                        self.send_response(200)
                        self.end_headers()
                    return
                with receiver._lock:
                    status = receiver.answers.popleft() if receiver.answers else 200
                    receiver.deliveries.append(
                        Delivery(
                            headers.get("webhook-id", ""),
                            envelope if isinstance(envelope, dict) else json.loads(body),
                            status,
                            time.monotonic(),
                            self.path,
                        )
                    )
                    receiver._arrived.notify_all()
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- what a test asks --------------------------------------------------------------

    def accepted(self) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if 200 <= d.status < 300]

    def alert_deliveries(self) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.envelope.get("type") != "heartbeat"]

    def counts(self) -> Counter[str]:
        """Accepted deliveries per webhook-id (a retried duplicate counts twice)."""
        return Counter(d.webhook_id for d in self.accepted())

    def wait_for(self, predicate: Any, timeout_s: float = 30.0) -> bool:
        """Block (a thread) until `predicate(self)` holds."""
        deadline = time.monotonic() + timeout_s
        with self._arrived:
            while True:
                self._lock.release()
                try:
                    done = predicate(self)
                finally:
                    self._lock.acquire()
                if done:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._arrived.wait(min(left, 0.1))


def main() -> None:
    """A receiver in a process of its own (bench/notify.py): prints its URL, serves until
    its standard input closes, then writes what it received as JSON lines to `argv[1]`
    (times on CLOCK_MONOTONIC, which every process of the machine shares)."""
    import sys

    receiver = WebhookReceiver().start()
    print(receiver.url, flush=True)
    sys.stdin.read()
    receiver.stop()
    with open(sys.argv[1], "w") as out:
        for d in receiver.deliveries:
            out.write(json.dumps({**d.__dict__}) + "\n")
        for refused in receiver.refused:
            out.write(json.dumps({"refused": refused}) + "\n")


if __name__ == "__main__":
    main()

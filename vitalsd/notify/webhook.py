"""Webhooks signed per the Standard Webhooks spec (standardwebhooks.com): the body is
the alert's event envelope exactly as `/ws` sends it, with `webhook-id` (the
notification's idempotency key, so a receiver drops a retried duplicate),
`webhook-timestamp` and `webhook-signature`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Final

import httpx
from standardwebhooks.webhooks import Webhook

from vitalsd.notify.channel import DeliveryResult, Notification
from vitalsd.store.events import encode_json

# One delivery attempt may take this long (connect, send, answer); the outbox retries.
POST_TIMEOUT_S: Final = 10.0
# Answers worth trying again: the receiver is busy or broken for now (RFC 9110).
RETRY_STATUSES: Final = frozenset({408, 425, 429})


class WebhookChannel:
    kind = "webhook"

    def __init__(
        self, name: str, url: str, secret: str, client: httpx.AsyncClient | None = None
    ) -> None:
        self.name = name
        self.url = url
        self._signer = Webhook(secret)
        self._client = client or httpx.AsyncClient(timeout=POST_TIMEOUT_S)

    async def recipients(self, roles: Sequence[str]) -> Sequence[str]:
        return [self.name]

    async def send(self, notification: Notification) -> DeliveryResult:
        return await self.post(notification.key, notification.envelope)

    async def post(self, message_id: str, envelope: Mapping[str, object]) -> DeliveryResult:
        """POST one signed envelope. 2xx: delivered. 5xx, 408/425/429 or no answer:
        failed, retry. Any other answer: failed for good (the receiver refuses it)."""
        body = encode_json(dict(envelope))
        # Real time, not the clinic's: the receiver checks it against its own clock.
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "user-agent": "vitalsd",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self._signer.sign(message_id, now, body),
        }
        try:
            response = await self._client.post(self.url, content=body.encode(), headers=headers)
        except httpx.HTTPError as error:
            return DeliveryResult("failed", f"{type(error).__name__}: {error}", retry=True)
        status = response.status_code
        if 200 <= status < 300:
            return DeliveryResult("delivered", f"HTTP {status}")
        retry = status >= 500 or status in RETRY_STATUSES
        return DeliveryResult("failed", f"HTTP {status}", retry=retry)

    async def close(self) -> None:
        await self._client.aclose()

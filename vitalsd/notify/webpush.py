"""Web Push to nurses' phones and tablets (issue #15): RFC 8030 delivery through the
device's push service, the payload encrypted for the device (RFC 8291, `aes128gcm`),
signed with the daemon's VAPID key (RFC 8292); pywebpush does all three.

The payload is what the service worker (`api/static/sw.js`) shows: priority, chair,
patient initials, value and limit, and a short-lived action token so its Acknowledge
goes through the same API and audit as the dashboard's button.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final, Protocol

import aiohttp
from pywebpush import WebPushException, webpush_async
from sqlalchemy.ext.asyncio import AsyncEngine

from vitalsd.notify import push_actions
from vitalsd.notify.channel import DeliveryResult, Notification
from vitalsd.notify.push_subscriptions import (
    PushSubscriptions,
    PushTarget,
    recipient_of,
    subscription_id_of,
)
from vitalsd.notify.vapid import VapidKeys, load_or_create

log = logging.getLogger(__name__)

# Whose devices a webpush channel reaches when the settings name no roles.
DEFAULT_ROLES: Final = ("nurse",)
# RFC 8030 5.2: how long the push service keeps a message for a device that is offline.
# Past the action token's life an Acknowledge from it would be refused anyway; a high
# alert still open by then has re-notified with a fresh message.
MESSAGE_TTL: Final = push_actions.ACTION_TTL
# RFC 8292 2: the JWT's expiry, at most 24 hours ahead; some push services ask for less.
VAPID_EXPIRY: Final = timedelta(hours=1)
SEND_TIMEOUT_S: Final = 10.0
# RFC 8030 8.2: a payload is at most 4096 bytes once encrypted (with its 86-byte header
# and padding); what we send stays well under.
MAX_PAYLOAD_BYTES: Final = 3000
# The push service's answers that mean the subscription no longer exists (RFC 8030 7.3).
GONE: Final = frozenset({404, 410})
# Worth trying again later: rate limited, or the push service's own trouble.
TRANSIENT: Final = frozenset({408, 425, 429, 500, 502, 503, 504})


def session_path(notification: Notification) -> str:
    """Where "Open" takes the nurse: the alert's session, else the alert list."""
    data = notification.envelope.get("data")
    session_id = data.get("session_id") if isinstance(data, dict) else None
    return f"/#/session/{session_id}" if isinstance(session_id, int) else "/#/alerts"


def push_payload(notification: Notification, action_token: str) -> bytes:
    """The JSON the service worker receives (kept small: RFC 8030 caps it)."""
    body = {
        "v": 1,
        "key": notification.key,
        "alert_id": notification.alert_id,
        "transition": notification.transition,
        "priority": notification.priority,
        "kind": notification.kind,
        "title": notification.title,
        "body": notification.body,
        "chair": notification.chair,
        "patient_initials": notification.patient_initials,
        "value": notification.value,
        "limit": notification.limit,
        "url": session_path(notification),
        "at": notification.envelope.get("at"),
        "token": action_token,
    }
    encoded = json.dumps(body, separators=(",", ":")).encode()
    if len(encoded) > MAX_PAYLOAD_BYTES:
        # Never drop the alert for its length: shorten the free text, keep the facts.
        body["body"] = str(body["body"])[:200]
        body["title"] = str(body["title"])[:100]
        encoded = json.dumps(body, separators=(",", ":")).encode()
    return encoded


class WebPushChannel:
    """One `[[notify.channels]]` entry of kind "webpush": every subscribed device of an
    enabled user in the channel's roles. Implements `vitalsd.notify.channel.Channel`."""

    kind = "webpush"

    def __init__(
        self,
        name: str,
        subscriptions: PushSubscriptions,
        keys: VapidKeys,
        *,
        token_secret: bytes,
        subject: str,
        clock: Callable[[], datetime],
        timeout_s: float = SEND_TIMEOUT_S,
    ) -> None:
        """`subject`: the VAPID contact a push service may write to about our traffic
        (`mailto:` or `https:`, RFC 8292 2.1); `token_secret` the daemon's token secret,
        from which the action tokens' key is derived."""
        if not subject.startswith(("mailto:", "https:")):
            raise ValueError(f"VAPID subject must be a mailto: or https: URI, got {subject!r}")
        self.name = name
        self._subscriptions = subscriptions
        self._signer = keys.signer()
        self._token_secret = token_secret
        self._subject = subject
        self._clock = clock
        self._timeout_s = timeout_s

    async def recipients(self, roles: Sequence[str]) -> Sequence[str]:
        ids = await self._subscriptions.ids_for_roles(list(roles) or list(DEFAULT_ROLES))
        return [recipient_of(i) for i in ids]

    async def send(self, notification: Notification) -> DeliveryResult:
        subscription_id = subscription_id_of(notification.recipient)
        if subscription_id is None:
            return DeliveryResult("failed", f"{notification.recipient!r} is not a push device")
        target = await self._subscriptions.target(subscription_id)
        if target is None:
            return DeliveryResult("gone", "the device unsubscribed")
        if target.disabled:
            return DeliveryResult("failed", f"{target.username}'s account is disabled")
        now = self._clock()
        token = push_actions.issue(
            self._token_secret,
            username=target.username,
            token_version=target.token_version,
            alert_id=notification.alert_id,
            key=notification.key,
            now=now,
        )
        return await self._post(target, push_payload(notification, token), notification, now)

    async def _post(
        self, target: PushTarget, payload: bytes, notification: Notification, now: datetime
    ) -> DeliveryResult:
        headers: dict[str, str | int | float] = {
            # RFC 8030 5.3: a high alert may wake the device; others wait for it.
            "Urgency": "high" if notification.priority == "high" else "normal",
            # RFC 8030 5.4: a newer message about the same alert replaces one not yet
            # delivered, so a phone back in range gets the latest, not a backlog.
            "Topic": f"alert-{notification.alert_id}",
        }
        claims: dict[str, str | int] = {
            "sub": self._subject,
            "exp": int((now + VAPID_EXPIRY).timestamp()),
        }
        try:
            await webpush_async(
                subscription_info=target.subscription_info,
                data=payload.decode(),
                vapid_private_key=self._signer,
                vapid_claims=claims,
                content_encoding="aes128gcm",
                ttl=int(MESSAGE_TTL.total_seconds()),
                headers=headers,
                timeout=self._timeout_s,
            )
        except WebPushException as error:
            status = error.status_code
            if status in GONE:
                await self._subscriptions.forget(target.id)
                log.info(
                    "push subscription %d of %s is gone (%s)", target.id, target.username, status
                )
                return DeliveryResult(
                    "gone", f"push service answered {status}: subscription deleted"
                )
            detail = f"push service answered {status}: {error.message}"[:500]
            return DeliveryResult("failed", detail, retry=status in TRANSIENT or status is None)
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            return DeliveryResult(
                "failed", f"push service unreachable: {error!r}"[:500], retry=True
            )
        await self._subscriptions.delivered(target.id, now)
        return DeliveryResult("sent", f"accepted by the push service for {target.username}")


# RFC 8292 2.1: a contact for the push service's operators. Apple's push service refuses
# some placeholder contacts: a clinic sets its own as the channel's `url`.
DEFAULT_SUBJECT: Final = "mailto:vitalsd@localhost"


class WebPushChannelConfig(Protocol):
    """What of a `[[notify.channels]]` entry the channel reads (vitalsd.notify.config)."""

    name: str
    url: str | None


def webpush_channel(
    config: WebPushChannelConfig,
    *,
    reads: AsyncEngine,
    writes: AsyncEngine,
    data_dir: Path,
    token_secret: bytes,
    clock: Callable[[], datetime],
) -> WebPushChannel:
    """The channel for a `kind = "webpush"` entry, its VAPID key pair made in `data_dir`
    on first start (what the notifier calls when it builds its channels): `url` is the
    VAPID contact (`mailto:` or `https:`); `token_secret` the daemon's
    (`vitalsd.auth.token_issuer_for(settings).secret`)."""
    return WebPushChannel(
        config.name,
        PushSubscriptions(reads, writes),
        load_or_create(data_dir),
        token_secret=token_secret,
        subject=config.url or DEFAULT_SUBJECT,
        clock=clock,
    )

"""What every delivery channel promises the notifier."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Outcome = Literal["sent", "delivered", "failed", "gone"]


@dataclass(frozen=True, slots=True)
class Notification:
    """One message for one recipient about one alert transition."""

    key: str  # idempotency key: f"{alert_id}:{transition}:{tier}:{recipient}"
    alert_id: int
    transition: str  # "raised", "renotified", "worsened", "escalated", ...
    priority: str  # high | medium | low
    kind: str  # alert kind, e.g. severe_hypertension, cuff_offline
    title: str  # e.g. "HIGH - Chair 3 - J.D."
    body: str  # e.g. "Severe hypertension 182/96 mmHg (limit 180/110)"
    chair: str | None
    patient_initials: str | None
    value: str | None  # "182/96 mmHg"
    limit: str | None  # "180/110 mmHg"
    envelope: Mapping[str, object]  # {"seq","type","at","data"} exactly as /ws sends it
    recipient: str  # channel name, or "push:<subscription id>" for a web push device


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    outcome: Outcome  # "gone": the recipient no longer exists (push subscription expired)
    detail: str = ""
    retry: bool = False  # failed, but worth retrying with back-off


class Channel(Protocol):
    name: str
    kind: str  # "webhook" | "apprise" | "webpush"

    async def recipients(self, roles: Sequence[str]) -> Sequence[str]:
        """Who this channel reaches for these roles (webhook/apprise: [self.name];
        webpush: "push:<id>" per subscribed device of an enabled user in those roles)."""
        ...

    async def send(self, notification: Notification) -> DeliveryResult: ...

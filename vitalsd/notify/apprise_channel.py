"""Every other service (SMS gateways, Pushover, ntfy, Slack, e-mail, a JSON endpoint)
through apprise: one apprise URL per channel (https://github.com/caronc/apprise/wiki)."""

from __future__ import annotations

from collections.abc import Sequence

import apprise

from vitalsd.notify.channel import DeliveryResult, Notification

# IEC 60601-1-8 priorities as apprise's message types (colour and icon on the phone).
NOTIFY_TYPES = {
    "high": apprise.NotifyType.FAILURE,
    "medium": apprise.NotifyType.WARNING,
    "low": apprise.NotifyType.INFO,
}


class AppriseChannel:
    kind = "apprise"

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self._apprise = apprise.Apprise()
        if not self._apprise.add(url):
            raise ValueError(
                f"notify channel {name!r}: apprise does not understand its url "
                "(see https://github.com/caronc/apprise/wiki for the URL of each service)"
            )

    async def recipients(self, roles: Sequence[str]) -> Sequence[str]:
        return [self.name]

    async def send(self, notification: Notification) -> DeliveryResult:
        """Apprise says only whether the service accepted it: `sent`, not `delivered`
        (so a tier reached only this way escalates after the receipt timeout)."""
        try:
            accepted = await self._apprise.async_notify(
                body=notification.body,
                title=notification.title,
                notify_type=NOTIFY_TYPES.get(notification.priority, apprise.NotifyType.INFO),
            )
        except Exception as error:  # a plugin's own failure: say which, try again
            return DeliveryResult("failed", f"{type(error).__name__}: {error}", retry=True)
        if accepted:
            return DeliveryResult("sent", "accepted by the service")
        return DeliveryResult("failed", "the service did not accept it (see the log)", retry=True)

"""`GET /api/alerts/{id}/receipts`: who was told of an alert, and how far it got."""

from __future__ import annotations

from datetime import timedelta

import httpx

from tests.api.conftest import Ward
from tests.api.test_alerts import Auth, severe_alert
from tests.notify.receiver import SECRET, WebhookReceiver
from vitalsd.clinic import Clinic
from vitalsd.domain import Role
from vitalsd.notify.config import ChannelSettings, NotifySettings, RuleSettings
from vitalsd.notify.notifier import Notifier


async def test_an_alerts_receipts_show_each_recipient_and_state(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clinic: Clinic
) -> None:
    receiver = WebhookReceiver().start()
    settings = NotifySettings(
        channels=[ChannelSettings(name="ward", kind="webhook", url=receiver.url, secret=SECRET)],
        rules=[RuleSettings(kinds=["severe_hypertension"], channels=["ward"])],
    )
    notifier = Notifier(clinic, settings, escalation_delay=timedelta(minutes=2))
    try:
        alert = await severe_alert(client, auth, ward)
        await notifier.flush()
    finally:
        await notifier.close()
        receiver.stop()
    answer = await client.get(f"/api/alerts/{alert['id']}/receipts", headers=auth[Role.NURSE])
    assert answer.status_code == 200
    (receipt,) = answer.json()
    assert receipt["channel"] == "ward"
    assert receipt["recipient"] == "ward"
    assert receipt["state"] == "delivered"
    assert receipt["transition"] == "raised"
    assert receipt["delivered_at"] is not None


async def test_receipts_of_an_unknown_alert_are_a_404(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    answer = await client.get("/api/alerts/999/receipts", headers=auth[Role.NURSE])
    assert answer.status_code == 404
    assert "detail" in answer.json() or "error" in answer.json()


async def test_receipts_need_a_token(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/alerts/1/receipts")
    assert answer.status_code == 401

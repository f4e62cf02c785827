"""apprise, the heartbeat, failing channels, receipts shown and the receipts route."""

from __future__ import annotations

import asyncio
from collections import deque

from sqlalchemy import create_engine as create_sync_engine

from tests.clock import FakeClock
from tests.notify.conftest import NURSE
from tests.notify.receiver import SECRET, WebhookReceiver
from tests.notify.test_webhooks import SEVERE, notifier_for, severe
from vitalsd.clinic import Clinic
from vitalsd.notify.config import ChannelSettings, NotifySettings, RuleSettings
from vitalsd.notify.receipts import mark_shown, mark_shown_async, receipts_of


def apprise_to(receiver: WebhookReceiver) -> NotifySettings:
    host_port = receiver.url.removeprefix("http://").removesuffix("/hook")
    return NotifySettings(
        channels=[ChannelSettings(name="json", kind="apprise", url=f"json://{host_port}/apprise")],
        rules=[RuleSettings(kinds=[SEVERE], channels=["json"])],
    )


async def test_apprise_json_url_reaches_a_local_receiver(clinic: Clinic, session_id: int) -> None:
    receiver = WebhookReceiver(signed=False).start()
    try:
        notifier = notifier_for(clinic, apprise_to(receiver))
        alert_id = await severe(clinic, session_id)
        await notifier.flush()
        (delivery,) = receiver.accepted()
        assert delivery.path == "/apprise"
        assert delivery.envelope["title"] == "HIGH - Chair 3 - C.D."
        assert "186/112" in delivery.envelope["message"]
        (receipt,) = await receipts_of(clinic.engine, alert_id)
        assert receipt.state == "sent"  # apprise cannot say it was delivered
    finally:
        receiver.stop()


def one_webhook(receiver: WebhookReceiver, **extra: object) -> NotifySettings:
    return NotifySettings(
        channels=[ChannelSettings(name="ward", kind="webhook", url=receiver.url, secret=SECRET)],
        rules=[RuleSettings(kinds=[SEVERE], channels=["ward"])],
        **extra,  # type: ignore[arg-type]
    )


async def test_a_channel_failing_in_a_row_is_reported_and_recovers_on_success(
    clinic: Clinic, session_id: int, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    receiver.answers = deque([500, 500, 500])
    notifier = notifier_for(clinic, one_webhook(receiver, channel_failing_after=3))
    await severe(clinic, session_id)
    for _ in range(3):
        await notifier.flush()
        clock.advance(seconds=10)
    assert "ward" in notifier.failing
    assert "HTTP 500" in notifier.failing["ward"]
    await notifier.flush()
    assert notifier.failing == {}


async def test_a_refusing_receiver_fails_the_receipt_for_good_with_why(
    clinic: Clinic, session_id: int, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    receiver.answers = deque([404])
    notifier = notifier_for(clinic, one_webhook(receiver))
    alert_id = await severe(clinic, session_id)
    await notifier.flush()
    clock.advance(10)
    await notifier.flush()
    (receipt,) = await receipts_of(clinic.engine, alert_id)
    assert receipt.state == "failed"
    assert "HTTP 404" in (receipt.detail or "")
    assert len(receiver.deliveries) == 1


async def test_heartbeat_posts_a_signed_envelope_on_its_period(
    clinic: Clinic, receiver: WebhookReceiver
) -> None:
    settings = one_webhook(receiver, heartbeat_channel="ward", heartbeat_every_seconds=0.05)
    notifier = notifier_for(clinic, settings)
    task = asyncio.create_task(notifier.run())
    try:
        found = await asyncio.to_thread(receiver.wait_for, lambda r: len(r.accepted()) >= 2)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert found
    beat = receiver.accepted()[0]
    assert beat.envelope["type"] == "heartbeat"
    assert beat.envelope["seq"] is None
    assert receiver.refused == []


async def test_shown_moves_a_receipt_forward_never_back(
    clinic: Clinic, session_id: int, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    notifier = notifier_for(clinic, one_webhook(receiver))
    alert_id = await severe(clinic, session_id)
    await notifier.flush()
    (receipt,) = await receipts_of(clinic.engine, alert_id)
    assert await mark_shown_async(clinic.engine, receipt.key, clock()) is True
    assert await mark_shown_async(clinic.engine, receipt.key, clock()) is False
    assert await mark_shown_async(clinic.engine, "no:such:0:key", clock()) is False
    await clinic.acknowledge_alert(alert_id, by=NURSE)
    await notifier.flush()
    sync_url = clinic.engine.url.set(drivername="sqlite")
    engine = create_sync_engine(sync_url)
    try:
        assert mark_shown(engine, receipt.key, clock()) is False  # acknowledged already
    finally:
        engine.dispose()
    (receipt,) = await receipts_of(clinic.engine, alert_id)
    assert receipt.state == "acknowledged"
    assert receipt.shown_at is not None


async def test_a_snooze_stops_the_chain_and_its_end_sounds_again(
    clinic: Clinic, session_id: int, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    notifier = notifier_for(clinic, one_webhook(receiver))
    alert_id = await severe(clinic, session_id)
    await notifier.flush()
    await clinic.snooze_alert(alert_id, 5, by=NURSE)
    await notifier.flush()
    clock.advance(6)
    await clinic.apply_time()  # the clinic's timers end the snooze
    await notifier.flush()
    transitions = [r.transition for r in await receipts_of(clinic.engine, alert_id)]
    assert transitions == ["raised", "snooze_expired"]
    assert len(receiver.accepted()) == 2

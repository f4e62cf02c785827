"""Webhooks: signed per Standard Webhooks, retried from the durable outbox, escalated
only while unacknowledged; a real HTTP receiver verifies every signature."""

from __future__ import annotations

from collections import deque
from datetime import timedelta

from tests.clock import FakeClock
from tests.notify.conftest import NURSE
from tests.notify.receiver import SECRET, WebhookReceiver
from vitalsd.clinic import Clinic
from vitalsd.notify.config import ChannelSettings, NotifySettings, RuleSettings
from vitalsd.notify.notifier import Notifier
from vitalsd.notify.receipts import receipts_of

RETRIES = (1.0, 2.0, 5.0)
# The first reading of a session is its baseline: a severe one raises a dosing hold too,
# which these rules leave to the dashboard.
SEVERE = "severe_hypertension"


def two_tiers(receiver: WebhookReceiver, after_minutes: float = 5) -> NotifySettings:
    return NotifySettings(
        channels=[
            ChannelSettings(name="ward", kind="webhook", url=receiver.url, secret=SECRET),
            ChannelSettings(
                name="oncall", kind="webhook", url=receiver.url + "/oncall", secret=SECRET
            ),
        ],
        rules=[
            RuleSettings(kinds=[SEVERE], channels=["ward"]),
            RuleSettings(kinds=[SEVERE], channels=["oncall"], after_minutes=after_minutes),
        ],
    )


# Every notifier a test made, closed after it (tests/notify/conftest.py).
MADE: list[Notifier] = []


def notifier_for(clinic: Clinic, settings: NotifySettings) -> Notifier:
    notifier = Notifier(
        clinic, settings, escalation_delay=timedelta(minutes=2), retry_delays_s=RETRIES
    )
    MADE.append(notifier)
    return notifier


async def severe(clinic: Clinic, session_id: int) -> int:
    await clinic.record_manual_reading(session_id, systolic=186, diastolic=112, by=NURSE)
    (alert,) = [a for a in await clinic.list_alerts() if a.kind == "severe_hypertension"]
    return alert.id


def paths(receiver: WebhookReceiver) -> list[str]:
    return [d.path for d in receiver.accepted()]


async def test_alert_reaches_the_webhook_signed_with_the_ws_envelope(
    clinic: Clinic, session_id: int, receiver: WebhookReceiver
) -> None:
    notifier = notifier_for(clinic, two_tiers(receiver))
    alert_id = await severe(clinic, session_id)
    await notifier.flush()
    (delivery,) = receiver.accepted()
    assert receiver.refused == []
    assert set(delivery.envelope) == {"seq", "type", "at", "data"}
    assert delivery.envelope["type"] == "alert"
    assert delivery.envelope["data"]["id"] == alert_id
    assert delivery.webhook_id == f"{alert_id}:raised:0:ward"
    (receipt,) = await receipts_of(clinic.engine, alert_id)
    assert (receipt.state, receipt.channel, receipt.attempts) == ("delivered", "ward", 1)


async def test_a_failing_receiver_is_retried_with_back_off_until_it_answers(
    clinic: Clinic, session_id: int, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    receiver.answers = deque([500, 500])
    notifier = notifier_for(clinic, two_tiers(receiver))
    alert_id = await severe(clinic, session_id)
    await notifier.flush()
    await notifier.flush()  # not due yet: back-off
    assert [d.status for d in receiver.deliveries] == [500]
    clock.advance(seconds=1)
    await notifier.flush()
    clock.advance(seconds=2)
    await notifier.flush()
    assert [d.status for d in receiver.deliveries] == [500, 500, 200]
    assert len({d.webhook_id for d in receiver.deliveries}) == 1  # the same message
    (receipt,) = await receipts_of(clinic.engine, alert_id)
    assert (receipt.state, receipt.attempts) == ("delivered", 3)


async def test_second_tier_fires_only_while_the_alert_stays_unacknowledged(
    clinic: Clinic, session_id: int, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    notifier = notifier_for(clinic, two_tiers(receiver))
    alert_id = await severe(clinic, session_id)
    await notifier.flush()
    clock.advance(4.9)
    await notifier.flush()
    assert paths(receiver) == ["/hook"]
    clock.advance(0.1)
    await notifier.flush()
    assert paths(receiver) == ["/hook", "/hook/oncall"]
    assert receiver.accepted()[1].webhook_id == f"{alert_id}:escalated:1:oncall"


async def test_acknowledged_in_time_the_second_tier_is_never_sent(
    clinic: Clinic, session_id: int, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    notifier = notifier_for(clinic, two_tiers(receiver))
    alert_id = await severe(clinic, session_id)
    await notifier.flush()
    clock.advance(1)
    await clinic.acknowledge_alert(alert_id, by=NURSE)
    await notifier.flush()
    clock.advance(30)
    await notifier.flush()
    assert paths(receiver) == ["/hook"]
    (receipt,) = await receipts_of(clinic.engine, alert_id)
    assert receipt.state == "acknowledged"


async def test_acknowledging_cancels_what_is_queued_but_unsent(
    clinic: Clinic, session_id: int, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    receiver.answers = deque([503])
    notifier = notifier_for(clinic, two_tiers(receiver))
    alert_id = await severe(clinic, session_id)
    await notifier.flush()  # 503: queued for a retry
    await clinic.acknowledge_alert(alert_id, by=NURSE)
    await notifier.flush()
    clock.advance(10)
    await notifier.flush()
    assert [d.status for d in receiver.deliveries] == [503]
    (receipt,) = await receipts_of(clinic.engine, alert_id)
    assert receipt.state == "cancelled"
    assert "acknowledged" in (receipt.detail or "")


async def test_no_receipt_in_time_escalates_early(
    clinic: Clinic, session_id: int, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    receiver.answers = deque([500] * 10)
    settings = two_tiers(receiver, after_minutes=30).model_copy(
        update={"receipt_timeout_seconds": 60}
    )
    notifier = notifier_for(clinic, settings)
    await severe(clinic, session_id)
    await notifier.flush()
    clock.advance(seconds=61)
    receiver.answers.clear()
    await notifier.flush()
    assert "/hook/oncall" in paths(receiver)


async def test_a_restarted_notifier_resumes_from_its_cursor_and_sends_nothing_twice(
    clinic: Clinic, session_id: int, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    settings = two_tiers(receiver)
    await severe(clinic, session_id)
    await notifier_for(clinic, settings).flush()
    restarted = notifier_for(clinic, settings)
    await restarted.flush()
    clock.advance(6)
    await restarted.flush()
    await notifier_for(clinic, settings).flush()
    assert sorted(receiver.counts().values()) == [1, 1]


async def test_worsening_after_acknowledgement_notifies_again(
    clinic: Clinic, session_id: int, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    notifier = notifier_for(clinic, two_tiers(receiver))
    alert_id = await severe(clinic, session_id)
    await notifier.flush()
    await clinic.acknowledge_alert(alert_id, by=NURSE)
    clock.advance(1)
    await clinic.record_manual_reading(session_id, systolic=205, diastolic=125, by=NURSE)
    await notifier.flush()
    ids = [d.webhook_id for d in receiver.accepted()]
    assert ids == [f"{alert_id}:raised:0:ward", f"{alert_id}:worsened.1:0:ward"]


async def test_default_chain_without_rules_reaches_the_ward_then_the_clinician(
    clinic: Clinic, session_id: int, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    settings = NotifySettings(
        channels=[
            ChannelSettings(name="ward", kind="webhook", url=receiver.url, secret=SECRET),
            ChannelSettings(
                name="doctor",
                kind="webhook",
                url=receiver.url + "/doctor",
                secret=SECRET,
                roles=["clinician"],
            ),
        ]
    )
    notifier = notifier_for(clinic, settings)
    alert_id = await severe(clinic, session_id)

    def ids() -> list[str]:
        return [d.webhook_id for d in receiver.accepted() if d.envelope["data"]["id"] == alert_id]

    await notifier.flush()
    assert ids() == [f"{alert_id}:raised:0:ward"]
    clock.advance(2)  # Settings.escalation_delay
    await notifier.flush()
    assert ids()[1:] == [f"{alert_id}:escalated:1:doctor"]
    await clinic.acknowledge_alert(alert_id, by=NURSE)
    clock.advance(10)
    await notifier.flush()
    assert len(ids()) == 2

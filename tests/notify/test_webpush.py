"""Web Push (issue #15) through a real push service on a loopback port: what reaches a
device is signed with our VAPID key and readable only with the device's keys."""

from __future__ import annotations

import base64
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.notify.push_service import Device, PushService
from vitalsd.auth import Actor
from vitalsd.clinic import Clinic
from vitalsd.domain import Role
from vitalsd.notify import push_actions
from vitalsd.notify.channel import Notification
from vitalsd.notify.push_subscriptions import PushSubscriptions, recipient_of
from vitalsd.notify.vapid import VAPID_KEY_FILE, load_or_create
from vitalsd.notify.webpush import WebPushChannel, webpush_channel
from vitalsd.store.engine import create_engine, migrate

SECRET = b"webpush-tests-secret-webpush-tes"
ADMIN = Actor("admin", Role.ADMIN)
# Not a password anyone signs in with: these tests never log in.
HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"


def utc_now() -> datetime:
    # The push service checks `exp` against its own (real) clock, as a real one does.
    return datetime.now(UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
async def clinic(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Clinic]:
    """A migrated database (SQLite, and a fresh one on the suite's PostgreSQL) with two
    nurses and a clinician."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'vitalsd.sqlite3'}"
    else:
        url = str(request.getfixturevalue("fresh_postgres_url"))
    await migrate(url)
    service = Clinic(create_engine(url))
    users = (("nurse.kim", Role.NURSE), ("nurse.sam", Role.NURSE), ("dr.lee", Role.CLINICIAN))
    for name, role in users:
        await service.create_user(name, HASH, role)
    try:
        yield service
    finally:
        await service.close()


@pytest.fixture
async def push_service() -> AsyncIterator[PushService]:
    service = PushService()
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


@pytest.fixture
def subscriptions(clinic: Clinic) -> PushSubscriptions:
    return clinic.push_devices


@pytest.fixture
def channel(subscriptions: PushSubscriptions, tmp_path: Path) -> WebPushChannel:
    return WebPushChannel(
        "phones",
        subscriptions,
        load_or_create(tmp_path / "data"),
        token_secret=SECRET,
        subject="mailto:ward@clinic.example",
        clock=utc_now,
    )


async def subscribe(
    clinic: Clinic,
    subscriptions: PushSubscriptions,
    service: PushService,
    user: str,
    device: Device,
) -> int:
    account = await clinic.get_account(user)
    added = await subscriptions.subscribe(
        account.id,
        endpoint=service.endpoint(device),
        p256dh=device.p256dh,
        auth=device.auth,
        user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)",
        now=utc_now(),
    )
    return added.id


def severe(recipient: str, priority: str = "high") -> Notification:
    return Notification(
        key=f"41:raised:0:{recipient}",
        alert_id=41,
        transition="raised",
        priority=priority,
        kind="severe_hypertension",
        title="HIGH - Chair 3 - J.D.",
        body="Severe hypertension 182/96 mmHg (limit 180/110)",
        chair="Chair 3",
        patient_initials="J.D.",
        value="182/96 mmHg",
        limit="180/110 mmHg",
        envelope={
            "seq": 7,
            "type": "alert",
            "at": "2026-01-05T09:00:00+00:00",
            "data": {"id": 41, "session_id": 12, "priority": priority},
        },
        recipient=recipient,
    )


def test_vapid_key_pair_is_made_on_first_start_and_kept_private(tmp_path: Path) -> None:
    first = load_or_create(tmp_path / "data")
    again = load_or_create(tmp_path / "data")
    assert again == first
    assert stat.S_IMODE((tmp_path / "data" / VAPID_KEY_FILE).stat().st_mode) == 0o600
    assert len(base64.urlsafe_b64decode(first.public_key + "=")) == 65  # uncompressed P-256


async def test_a_push_reaches_the_device_signed_and_encrypted_for_it(
    clinic: Clinic,
    subscriptions: PushSubscriptions,
    channel: WebPushChannel,
    push_service: PushService,
    tmp_path: Path,
) -> None:
    phone = Device("kims-phone")
    subscription = await subscribe(clinic, subscriptions, push_service, "nurse.kim", phone)

    result = await channel.send(severe(recipient_of(subscription)))

    assert result.outcome == "sent", (result, push_service.refused)
    (got,) = push_service.received
    assert got.vapid_key == load_or_create(tmp_path / "data").public_key
    assert got.claims["sub"] == "mailto:ward@clinic.example"
    assert got.headers["urgency"] == "high"
    assert got.headers["topic"] == "alert-41"  # a newer message replaces an undelivered one
    assert int(got.headers["ttl"]) > 0
    assert got.payload["title"] == "HIGH - Chair 3 - J.D."
    assert got.payload["body"] == "Severe hypertension 182/96 mmHg (limit 180/110)"
    assert (got.payload["value"], got.payload["limit"]) == ("182/96 mmHg", "180/110 mmHg")
    assert got.payload["url"] == "/#/session/12"
    action = push_actions.verify(SECRET, got.payload["token"], utc_now())
    assert (action.username, action.alert_id, action.key) == (
        "nurse.kim",
        41,
        f"41:raised:0:push:{subscription}",
    )
    (device,) = await subscriptions.devices_of((await clinic.get_account("nurse.kim")).id)
    assert device.last_success_at is not None


async def test_a_medium_alert_is_sent_with_normal_urgency(
    clinic: Clinic,
    subscriptions: PushSubscriptions,
    channel: WebPushChannel,
    push_service: PushService,
) -> None:
    subscription = await subscribe(clinic, subscriptions, push_service, "nurse.kim", Device("tab"))
    result = await channel.send(severe(recipient_of(subscription), priority="medium"))
    assert result.outcome == "sent"
    assert push_service.received[0].headers["urgency"] == "normal"


@pytest.mark.parametrize("status", [404, 410])
async def test_a_subscription_the_push_service_no_longer_knows_is_gone_and_deleted(
    clinic: Clinic,
    subscriptions: PushSubscriptions,
    channel: WebPushChannel,
    push_service: PushService,
    status: int,
) -> None:
    phone = Device("old-phone")
    subscription = await subscribe(clinic, subscriptions, push_service, "nurse.kim", phone)
    push_service.answers[phone.name] = status

    result = await channel.send(severe(recipient_of(subscription)))

    assert result.outcome == "gone"
    assert await subscriptions.target(subscription) is None
    assert await channel.recipients(["nurse"]) == []


async def test_a_push_service_in_trouble_is_a_failure_worth_retrying(
    clinic: Clinic,
    subscriptions: PushSubscriptions,
    channel: WebPushChannel,
    push_service: PushService,
) -> None:
    phone = Device("phone")
    subscription = await subscribe(clinic, subscriptions, push_service, "nurse.kim", phone)
    push_service.answers[phone.name] = 503

    result = await channel.send(severe(recipient_of(subscription)))

    assert (result.outcome, result.retry) == ("failed", True)
    assert await subscriptions.target(subscription) is not None


async def test_a_refused_message_is_a_failure_not_worth_retrying(
    clinic: Clinic,
    subscriptions: PushSubscriptions,
    channel: WebPushChannel,
    push_service: PushService,
) -> None:
    phone = Device("phone")
    subscription = await subscribe(clinic, subscriptions, push_service, "nurse.kim", phone)
    push_service.answers[phone.name] = 413

    result = await channel.send(severe(recipient_of(subscription)))

    assert (result.outcome, result.retry) == ("failed", False)
    assert "413" in result.detail


async def test_an_unreachable_push_service_is_a_failure_worth_retrying(
    clinic: Clinic,
    subscriptions: PushSubscriptions,
    channel: WebPushChannel,
    push_service: PushService,
) -> None:
    phone = Device("phone")
    subscription = await subscribe(clinic, subscriptions, push_service, "nurse.kim", phone)
    await push_service.stop()

    result = await channel.send(severe(recipient_of(subscription)))

    assert (result.outcome, result.retry) == ("failed", True)


async def test_recipients_are_the_devices_of_enabled_users_in_the_roles(
    clinic: Clinic,
    subscriptions: PushSubscriptions,
    channel: WebPushChannel,
    push_service: PushService,
) -> None:
    kim = await subscribe(clinic, subscriptions, push_service, "nurse.kim", Device("kim"))
    kim_tablet = await subscribe(
        clinic, subscriptions, push_service, "nurse.kim", Device("kim-tab")
    )
    sam = await subscribe(clinic, subscriptions, push_service, "nurse.sam", Device("sam"))
    lee = await subscribe(clinic, subscriptions, push_service, "dr.lee", Device("lee"))
    await clinic.set_user_disabled("nurse.sam", True, by=ADMIN)

    assert await channel.recipients(["nurse"]) == [recipient_of(kim), recipient_of(kim_tablet)]
    assert await channel.recipients([]) == [recipient_of(kim), recipient_of(kim_tablet)]
    assert await channel.recipients(["clinician"]) == [recipient_of(lee)]
    assert recipient_of(sam) not in await channel.recipients(["nurse", "clinician"])


async def test_a_device_subscribed_again_belongs_to_whoever_subscribed_it_last(
    clinic: Clinic,
    subscriptions: PushSubscriptions,
    channel: WebPushChannel,
    push_service: PushService,
) -> None:
    tablet = Device("ward-tablet")
    first = await subscribe(clinic, subscriptions, push_service, "nurse.kim", tablet)
    again = await subscribe(clinic, subscriptions, push_service, "nurse.sam", tablet)

    assert again == first
    target = await subscriptions.target(first)
    assert target is not None and target.username == "nurse.sam"
    assert await subscriptions.devices_of((await clinic.get_account("nurse.kim")).id) == []


async def test_a_device_that_unsubscribed_meanwhile_is_gone(
    channel: WebPushChannel,
) -> None:
    result = await channel.send(severe(recipient_of(999)))
    assert result.outcome == "gone"


def test_an_action_token_is_no_access_token_and_expires() -> None:
    now = utc_now()
    token = push_actions.issue(
        SECRET, username="nurse.kim", token_version=0, alert_id=41, key="k", now=now
    )
    from vitalsd.auth import InvalidToken, TokenIssuer

    with pytest.raises(InvalidToken):
        TokenIssuer(SECRET, timedelta(hours=8)).verify(token, now)
    with pytest.raises(push_actions.InvalidAction, match="expired"):
        push_actions.verify(SECRET, token, now + push_actions.ACTION_TTL + timedelta(seconds=1))
    with pytest.raises(push_actions.InvalidAction):
        push_actions.verify(b"another-secret-another-secret-an", token, now)


def test_an_action_token_acknowledges_once() -> None:
    now = utc_now()
    token = push_actions.issue(
        SECRET, username="nurse.kim", token_version=0, alert_id=41, key="k", now=now
    )
    spent = push_actions.SpentActions(lambda: now)
    spent.spend(push_actions.verify(SECRET, token, now))
    with pytest.raises(push_actions.InvalidAction, match="used already"):
        spent.spend(push_actions.verify(SECRET, token, now))


async def test_a_channel_built_from_its_settings_makes_the_key_pair_on_first_start(
    clinic: Clinic, tmp_path: Path
) -> None:
    config = SimpleNamespace(name="phones", url="mailto:ward@clinic.example")
    built = webpush_channel(
        config,
        reads=clinic.engine,
        writes=clinic.writer_engine,
        data_dir=tmp_path / "fresh",
        token_secret=SECRET,
        clock=utc_now,
    )
    assert (built.name, built.kind) == ("phones", "webpush")
    assert (tmp_path / "fresh" / VAPID_KEY_FILE).exists()
    with pytest.raises(ValueError, match="mailto"):
        webpush_channel(
            SimpleNamespace(name="bad", url="http://x"),
            reads=clinic.engine,
            writes=clinic.writer_engine,
            data_dir=tmp_path / "fresh",
            token_secret=SECRET,
            clock=utc_now,
        )

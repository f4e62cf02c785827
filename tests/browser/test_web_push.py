"""Web Push in Chromium (issue #15): the dashboard's service worker registers; the
WebPush channel's message (sent signed and encrypted through a push service on
loopback, which decrypts it with the device's keys) is handed to the worker through the
DevTools protocol, as the browser's push client would; it shows the alert as a
notification, reports it shown, and its Acknowledge acknowledges the alert through the
API, with the audit row of the dashboard's button.

A tap on a system notification cannot be scripted; the test asks the worker to run the
shown notification's action through the same function its `notificationclick` uses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, CDPSession, Page, expect

from tests.browser.clinic_actions import severe_alert
from tests.browser.clinic_server import PASSWORD, ClinicServer
from tests.browser.conftest import LANDSCAPE, SCREENSHOTS, Tablet
from tests.notify.push_service import Device, PushService
from vitalsd.auth import TOKEN_SECRET_FILE
from vitalsd.notify.channel import Notification
from vitalsd.notify.push_subscriptions import recipient_of
from vitalsd.notify.webpush import webpush_channel
from vitalsd.views import AlertView

# The page asks its worker for what the notification shows.
NOTIFICATIONS_JS = """
async () => {
  const registration = await navigator.serviceWorker.ready;
  const shown = await registration.getNotifications();
  return shown.map((n) => ({
    title: n.title, body: n.body, tag: n.tag, requireInteraction: n.requireInteraction,
    actions: n.actions.map((a) => a.action), data: n.data,
  }));
}
"""
# Runs a shown notification's action in the worker (the `notificationclick` path).
ACT_JS = """
async ([tag, action]) => {
  const registration = await navigator.serviceWorker.ready;
  const channel = new MessageChannel();
  const answer = new Promise((resolve) => { channel.port1.onmessage = (e) => resolve(e.data); });
  registration.active.postMessage({ type: "notification-action", tag, action }, [channel.port2]);
  return answer;
}
"""


class PushTablet:
    """A signed-in nurse's tablet with the dashboard's service worker running, and a
    DevTools session that delivers pushes to it."""

    def __init__(self, browser: Browser, server: ClinicServer, viewport: Any = LANDSCAPE) -> None:
        self.server = server
        self.origin = server.url.rstrip("/")
        self.context = browser.new_context(viewport=viewport, service_workers="allow")
        self.context.grant_permissions(["notifications"], origin=self.origin)
        self.requests: list[tuple[str, str | None]] = []
        self.context.on("request", lambda r: self.requests.append((r.url, r.post_data)))
        self.tablet = Tablet(self.context, server.url)
        self.page: Page = self.tablet.sign_in("nurse")
        self.page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        self.cdp: CDPSession = self.context.new_cdp_session(self.page)
        self.registrations: list[dict[str, Any]] = []
        self.cdp.on(
            "ServiceWorker.workerRegistrationUpdated",
            lambda event: self.registrations.extend(event["registrations"]),
        )
        self.cdp.send("ServiceWorker.enable")

    def registration_id(self) -> str:
        for _ in range(200):  # events arrive while Playwright talks to the browser
            for registration in self.registrations:
                if registration["scopeURL"] == f"{self.origin}/" and not registration.get(
                    "isDeleted"
                ):
                    return str(registration["registrationId"])
            self.page.evaluate("1")
        raise AssertionError(
            f"no service worker registration for {self.origin}/: {self.registrations}"
        )

    def deliver(self, payload: bytes) -> None:
        """What the browser does when the push service hands it our (decrypted) message."""
        self.cdp.send(
            "ServiceWorker.deliverPushMessage",
            {
                "origin": self.origin,
                "registrationId": self.registration_id(),
                "data": payload.decode(),
            },
        )

    def notifications(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.page.evaluate(NOTIFICATIONS_JS)
        return result

    def wait_for_notification(self, tag: str) -> dict[str, Any]:
        """The notification with `tag`, once the worker has shown it (its push handler
        runs after `deliverPushMessage` returns)."""
        for _ in range(400):
            shown = [n for n in self.notifications() if n["tag"] == tag]
            if shown:
                return shown[0]
            self.page.wait_for_timeout(25)
        raise AssertionError(f"no notification {tag}; shown: {self.notifications()}")

    def act(self, tag: str, action: str) -> dict[str, Any]:
        result: dict[str, Any] = self.page.evaluate(ACT_JS, [tag, action])
        return result

    def close(self) -> None:
        errors = self.tablet.unexpected_errors()
        self.context.close()
        assert not errors, f"console errors: {errors}"


@pytest.fixture
def push_tablet(browser: Browser, clinic_server: ClinicServer) -> Iterator[PushTablet]:
    tablet = PushTablet(browser, clinic_server)
    try:
        yield tablet
    finally:
        tablet.close()


def payload_for(server: ClinicServer, alert: AlertView, chair: str) -> tuple[bytes, str]:
    """What reaches the nurse's device for this alert: the notifier's WebPush channel
    sends it, signed and encrypted, through a push service on loopback, which decrypts
    it with the device's keys, as the browser would before its worker gets it."""
    secret = (server.data_dir / TOKEN_SECRET_FILE).read_bytes()
    clinic = server.clinic
    service = PushService()
    server.call(service.start())
    try:
        phone = Device("nurse-phone")
        account = server.call(clinic.get_account("nurse"))
        device = server.call(
            clinic.push_devices.subscribe(
                account.id,
                endpoint=service.endpoint(phone),
                p256dh=phone.p256dh,
                auth=phone.auth,
                user_agent="a nurse's phone",
                now=clinic.now(),
            )
        )
        channel = webpush_channel(
            SimpleNamespace(name="phones", url="mailto:ward@clinic.example"),
            reads=clinic.engine,
            writes=clinic.writer_engine,
            data_dir=server.data_dir,
            token_secret=secret,
            clock=clinic.now,  # the clinic's (simulated) time: the API checks tokens by it
        )
        recipient = recipient_of(device.id)
        notification = Notification(
            key=f"{alert.id}:raised:0:{recipient}",
            alert_id=alert.id,
            transition="raised",
            priority=alert.priority,
            kind=alert.kind,
            title=f"HIGH - {chair} - J.D.",
            body="Severe hypertension 205/124 mmHg (limit 180/110)",
            chair=chair,
            patient_initials="J.D.",
            value="205/124 mmHg",
            limit="180/110 mmHg",
            envelope={
                "seq": 1,
                "type": "alert",
                "at": "2026-01-05T09:00:00+00:00",
                "data": {"id": alert.id, "session_id": alert.session_id},
            },
            recipient=recipient,
        )
        result = server.call(channel.send(notification))
        assert result.outcome == "sent", (result, service.refused)
        (received,) = service.received
        return json.dumps(received.payload).encode(), notification.key
    finally:
        server.call(service.stop())


def admin_api(server: ClinicServer) -> httpx.Client:
    client = httpx.Client(base_url=server.url, timeout=60)  # the login hashes (Argon2)
    token = client.post("/api/auth/token", data={"username": "admin", "password": PASSWORD})
    client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    return client


def test_the_dashboard_is_an_installable_web_app(push_tablet: PushTablet) -> None:
    page = push_tablet.page
    manifest = page.evaluate(
        "async () => { const link = document.querySelector('link[rel=manifest]');"
        " const r = await fetch(link.href);"
        " return [r.headers.get('content-type'), await r.json()]; }"
    )
    assert manifest[0].startswith("application/manifest+json")
    assert manifest[1]["display"] == "standalone"
    assert {icon["sizes"] for icon in manifest[1]["icons"]} >= {"192x192", "512x512"}
    scope = page.evaluate("navigator.serviceWorker.ready.then((r) => r.scope)")
    assert scope == f"{push_tablet.origin}/"


def test_a_pushed_alert_is_shown_reported_and_acknowledged_from_the_notification(
    push_tablet: PushTablet, clinic_server: ClinicServer
) -> None:
    alert = severe_alert(clinic_server, 3)
    payload, key = payload_for(clinic_server, alert, "Chair 3")

    push_tablet.deliver(payload)
    shown = push_tablet.wait_for_notification(f"alert-{alert.id}")

    assert shown["title"] == "HIGH - Chair 3 - J.D."
    assert shown["body"] == "Severe hypertension 205/124 mmHg (limit 180/110)"
    assert shown["actions"] == ["acknowledge", "open"]
    assert shown["requireInteraction"] is True
    receipts = [
        json.loads(body or "{}")
        for url, body in push_tablet.requests
        if url.endswith("/api/push/receipts")
    ]
    assert {"key": key, "state": "shown"}.items() <= receipts[0].items()

    result = push_tablet.act(f"alert-{alert.id}", "acknowledge")

    assert result == {"action": "acknowledge", "status": 200}
    api = admin_api(clinic_server)
    try:
        acknowledged = api.get(f"/api/alerts/{alert.id}").json()
        audit = api.get("/api/audit", params={"entity": "alert"}).json()
    finally:
        api.close()
    assert (acknowledged["state"], acknowledged["acknowledged_by"]) == ("acknowledged", "nurse")
    assert ("nurse", "acknowledged", alert.id) in [
        (a["actor"], a["action"], a["entity_id"]) for a in audit
    ]
    assert push_tablet.notifications() == []


def test_open_takes_the_nurse_to_the_alerts_session(
    push_tablet: PushTablet, clinic_server: ClinicServer
) -> None:
    alert = severe_alert(clinic_server, 4)
    payload, _key = payload_for(clinic_server, alert, "Chair 4")
    push_tablet.deliver(payload)
    push_tablet.wait_for_notification(f"alert-{alert.id}")

    result = push_tablet.act(f"alert-{alert.id}", "open")

    assert result["opened"] is True
    expect(push_tablet.page).to_have_url(f"{push_tablet.origin}/#/session/{alert.session_id}")
    state = clinic_server.call(clinic_server.clinic.get_alert(alert.id)).state
    assert state == "active"  # opening is not acknowledging


def test_the_profile_offers_notifications_on_this_device(push_tablet: PushTablet) -> None:
    page = push_tablet.page
    push_tablet.tablet.show("#/account")
    card = page.locator("[data-card='push']")
    expect(card.locator("h2")).to_have_text("Notifications on this device")
    expect(card.locator(".push-state")).to_have_attribute("data-push", "off")
    expect(card.get_by_role("button", name="Turn on")).to_be_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    card.screenshot(path=SCREENSHOTS / "account-push.png")

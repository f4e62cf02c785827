"""Issue #15: under an alert, the receipt of each notification (who was told, how far
the message got), from a real webhook receiver via the daemon's notifier."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.browser.clinic_actions import severe_alert
from tests.browser.clinic_server import ClinicServer
from tests.browser.conftest import SPEED, TabletFactory
from tests.notify.receiver import SECRET, WebhookReceiver
from vitalsd.notify.config import ChannelSettings, NotifySettings, RuleSettings


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def clinic_server(
    tmp_path_factory: pytest.TempPathFactory, receiver: WebhookReceiver
) -> Iterator[ClinicServer]:
    notify = NotifySettings(
        channels=[
            ChannelSettings(name="ward-pager", kind="webhook", url=receiver.url, secret=SECRET)
        ],
        rules=[RuleSettings(kinds=["severe_hypertension"], channels=["ward-pager"])],
    )
    server = ClinicServer(tmp_path_factory.mktemp("clinic"), speed=SPEED, notify=notify)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_an_alert_shows_who_was_notified_and_how_far_it_got(
    tablets: TabletFactory, clinic_server: ClinicServer, receiver: WebhookReceiver
) -> None:
    alert = severe_alert(clinic_server, 3)
    assert receiver.wait_for(
        lambda r: any(d.envelope["data"].get("id") == alert.id for d in r.accepted())
    )
    tablet = tablets("nurse")
    page = tablet.open()
    page.get_by_role("link", name=re.compile("^Alerts")).click()
    line = page.locator(f".alert-item[data-alert-id='{alert.id}'] .alert-receipts")
    expect(line).to_have_text("Notified: ward-pager: delivered")
    tablet.screenshot("alert-receipts-1280x800")  # README "Getting alerts on your phone"

"""The ward's technical alarms in a real browser (issue #15): an alarm of no chair shows
in a strip above the chairs and as "Ward" in the alert list, and goes when it clears."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.browser.clinic_server import ClinicServer
from tests.browser.conftest import TabletFactory

CHANNEL = "ward-pager"


@pytest.fixture
def failing_channel(clinic_server: ClinicServer) -> Iterator[str]:
    """A notification channel failing (as the notifier reports it), recovered afterwards
    so the module's other tests see a calm ward."""
    clinic_server.call(clinic_server.clinic.channel_failing(CHANNEL, "HTTP 503, 3 times"))
    try:
        yield CHANNEL
    finally:
        clinic_server.call(clinic_server.clinic.channel_recovered(CHANNEL))


def test_a_ward_alarm_shows_above_the_chairs_until_it_clears(
    tablets: TabletFactory, clinic_server: ClinicServer, failing_channel: str
) -> None:
    page = tablets("nurse").open()
    strip = page.locator(".ward-technical")
    item = strip.locator(".ward-technical-item[data-kind='channel_failing']")

    expect(item).to_have_attribute("data-priority", "medium")
    expect(item).to_contain_text(f"Alert channel failing: Notification channel {failing_channel}")
    clinic_server.call(clinic_server.clinic.channel_recovered(failing_channel))
    expect(strip).to_be_hidden()


def test_a_ward_alarm_is_listed_as_the_wards(tablets: TabletFactory, failing_channel: str) -> None:
    page = tablets("nurse").open("#/alerts")
    item = page.locator("[data-list='open'] .alert-item[data-kind='channel_failing']")

    expect(item.locator(".alert-where")).to_have_text("Ward")
    expect(item.locator(".alert-message")).to_contain_text(failing_channel)

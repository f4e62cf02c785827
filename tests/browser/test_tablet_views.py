"""The dashboard as a tablet shows it (issue #7, "Quality" and the screenshots): both
tablet sizes, touch targets, contrast, keyboard use, no layout shift, the cuffs view."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import ViewportSize, expect

from tests.browser.clinic_actions import severe_alert
from tests.browser.clinic_server import ClinicServer
from tests.browser.conftest import LANDSCAPE, PORTRAIT, Tablet, TabletFactory
from tests.browser.page_checks import (
    clipped_vitals,
    layout_shifts,
    low_contrast,
    small_targets,
    start_layout_shift_record,
)

SIZES = [pytest.param(LANDSCAPE, id="landscape"), pytest.param(PORTRAIT, id="portrait")]
FIRST_READINGS_MS = 20_000
# Readings, cuff pressure and check countdowns arriving while the shift is measured.
EVENTS_WATCHED = 8


def ward_with_readings(tablets: TabletFactory, viewport: ViewportSize) -> Tablet:
    tablet = tablets("nurse", viewport=viewport)
    page = tablet.open()
    for value in page.locator(".tile .bp-value").all():
        expect(value).to_have_text(re.compile(r"^\d+/\d+$"), timeout=FIRST_READINGS_MS)
    return tablet


def every_view(session_id: int) -> list[str]:
    return ["#/ward", "#/alerts", f"#/session/{session_id}", "#/devices"]


@pytest.mark.parametrize("viewport", SIZES)
def test_screenshots_of_ward_alerts_and_session(
    tablets: TabletFactory, clinic_server: ClinicServer, viewport: ViewportSize
) -> None:
    severe_alert(clinic_server, 3)
    tablet = ward_with_readings(tablets, viewport)
    page = tablet.page
    expect(page.locator("#alert-banner")).to_have_attribute("data-priority", "high")
    size = f"{viewport['width']}x{viewport['height']}"
    written = [tablet.screenshot(f"ward-{size}")]

    page.get_by_role("link", name=re.compile("^Alerts")).click()
    expect(page.locator("[data-list='open'] .alert-item").first).to_be_visible()
    written.append(tablet.screenshot(f"alerts-{size}"))
    tablet.show(f"#/session/{clinic_server.sessions[2]}")
    expect(page.locator(".timeline .reading").first).to_be_visible()
    written.append(tablet.screenshot(f"session-{size}"))

    assert all(path.stat().st_size > 10_000 for path in written), written


@pytest.mark.parametrize("viewport", SIZES)
def test_blood_pressure_and_pulse_fit_every_tile(
    tablets: TabletFactory, viewport: ViewportSize
) -> None:
    page = ward_with_readings(tablets, viewport).page

    assert clipped_vitals(page) == []
    assert page.evaluate("() => document.documentElement.scrollWidth <= innerWidth")


@pytest.mark.parametrize("viewport", SIZES)
def test_touch_targets_are_at_least_44_px(
    tablets: TabletFactory, clinic_server: ClinicServer, viewport: ViewportSize
) -> None:
    severe_alert(clinic_server, 3)  # the banner's buttons are on screen
    page = tablets("clinician", viewport=viewport).open()
    failures = {}

    for route in every_view(clinic_server.sessions[2]):
        page.evaluate("route => { location.hash = route; }", route)
        page.wait_for_timeout(300)
        failures[route] = small_targets(page)

    assert not any(failures.values()), failures


def test_text_contrast_meets_wcag_aa(tablets: TabletFactory, clinic_server: ClinicServer) -> None:
    severe_alert(clinic_server, 3)
    page = ward_with_readings(tablets, LANDSCAPE).page
    failures = {}

    for route in every_view(clinic_server.sessions[2]):
        page.evaluate("route => { location.hash = route; }", route)
        page.wait_for_timeout(300)
        failures[route] = low_contrast(page)

    assert not any(failures.values()), failures


def test_ward_does_not_shift_while_data_updates(tablets: TabletFactory) -> None:
    page = ward_with_readings(tablets, LANDSCAPE).page
    start_layout_shift_record(page)
    seq = page.evaluate("() => window.vitalsd.state.lastSeq")

    page.wait_for_function(
        "seq => window.vitalsd.state.lastSeq >= seq", arg=seq + EVENTS_WATCHED, timeout=30_000
    )
    page.wait_for_timeout(1100)  # and a tick of every countdown

    assert layout_shifts(page) == []


def test_keyboard_opens_a_session_from_the_ward(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    page = ward_with_readings(tablets, LANDSCAPE).page

    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.classList.contains('tile')"):
            break
    focused = page.evaluate("() => document.activeElement.dataset.sessionId")
    page.keyboard.press("Enter")

    expect(page.locator(f".session-view[data-session-id='{focused}']")).to_be_visible()


def test_keyboard_acknowledges_an_alert(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    alert = severe_alert(clinic_server, 3)
    page = tablets("nurse").open("#/alerts")
    button = (
        f"[data-list='open'] .alert-item[data-alert-id='{alert.id}'] [data-action='acknowledge']"
    )
    expect(page.locator(button)).to_be_visible()

    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("selector => document.activeElement.matches(selector)", button):
            break
    page.keyboard.press("Enter")

    item = page.locator(f"[data-list='open'] .alert-item[data-alert-id='{alert.id}']")
    expect(item).to_have_attribute("data-state", "acknowledged")


def test_cuffs_view_lists_battery_signal_state_and_chair(tablets: TabletFactory) -> None:
    page = tablets("nurse").open("#/devices")

    rows = page.locator(".devices-table tbody tr")
    expect(rows).to_have_count(6)
    for row in rows.all():
        expect(row.locator("td").nth(1)).to_have_text(re.compile(r"\d+%"))
        expect(row.locator("td").nth(3)).not_to_be_empty()
        expect(row.locator("td").nth(5)).to_have_text(re.compile(r"^Chair \d$"))


def test_admin_assigns_cuffs_to_chairs_from_the_cuffs_view(tablets: TabletFactory) -> None:
    page = tablets("admin").open("#/devices")

    pickers = page.locator(".devices-table select")

    expect(pickers).to_have_count(6)
    expect(pickers.first).to_have_value(re.compile(r"^\d+$"))

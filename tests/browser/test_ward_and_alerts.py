"""The ward and the nurse's alerts in a real browser (issue #7, "Tests in a real
browser"): six chairs with live readings, a severe cuff reading as a red alert, its
acknowledgement seen on a second tablet, the alarm sound."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.clinic_actions import chair_id, make_hypertensive, measure, severe_alert
from tests.browser.clinic_server import ClinicServer
from tests.browser.conftest import TabletFactory

# Issue #7: "a severe reading from a simulated cuff appears as a red alert within 2 s".
ALERT_DEADLINE_MS = 2000
# A reading every 5 simulated minutes per chair is every 5 s at the tests' speed; the
# brief-window cuffs deliver theirs when they next connect.
FIRST_READINGS_MS = 20_000


def near(mmhg: float) -> str:
    """A regex for `mmhg` in whole mmHg, give or take one."""
    whole = round(mmhg)
    return f"({whole - 1}|{whole}|{whole + 1})"


def test_sign_in_shows_the_ward_with_six_chairs(tablets: TabletFactory) -> None:
    page = tablets().sign_in("nurse")

    expect(page.locator(".user")).to_have_text("nurse · nurse")
    expect(page.locator(".tile")).to_have_count(6)
    expect(page.locator(".tile .chair-name")).to_have_text([f"Chair {n}" for n in range(1, 7)])


def test_every_chair_shows_a_reading_with_its_age(tablets: TabletFactory) -> None:
    page = tablets("nurse").open()

    for tile in page.locator(".tile").all():
        expect(tile.locator(".bp-value")).to_have_text(
            re.compile(r"^\d+/\d+$"), timeout=FIRST_READINGS_MS
        )
        expect(tile.locator(".age")).to_have_text(re.compile(r"ago|just now"))


def test_a_cuff_reading_taken_now_appears_on_its_tile(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    page = tablets("nurse").open()
    tile = page.locator(f".tile[data-chair-id='{chair_id(clinic_server, 1)}']")

    record = measure(clinic_server, 1)

    # Shown in whole mmHg; the cuff's SFLOAT keeps a tenth, so allow one either side.
    expect(tile.locator(".bp-value")).to_have_text(
        re.compile(f"^{near(record.reading.systolic)}/{near(record.reading.diastolic)}$")
    )


def test_tile_shows_live_cuff_pressure_while_the_cuff_inflates(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    page = tablets("nurse").open()
    tile = page.locator(f".tile[data-chair-id='{chair_id(clinic_server, 1)}']")

    measuring = clinic_server.spawn(clinic_server.cuffs[0].measure())

    expect(tile).to_have_attribute("data-measuring", "true")
    expect(tile.locator(".live-pressure")).to_have_text(re.compile(r"^measuring:\s*\d+ mmHg$"))
    measuring.result(30)


def test_severe_cuff_reading_shows_a_red_alert_within_two_seconds(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    page = tablets("nurse").open()
    tile = page.locator(f".tile[data-chair-id='{chair_id(clinic_server, 5)}']")
    make_hypertensive(clinic_server, 5)

    measure(clinic_server, 5)

    expect(tile).to_have_attribute("data-alert", "high", timeout=ALERT_DEADLINE_MS)
    expect(tile.locator(".tile-alert")).to_contain_text("High: Severe hypertension")
    banner = page.locator("#alert-banner")
    expect(banner).to_have_attribute("data-priority", "high")
    expect(banner).to_have_css("background-color", "rgb(200, 16, 46)")


def test_alert_list_puts_high_priority_first_with_icon_and_words(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    severe_alert(clinic_server, 5)
    page = tablets("nurse").open()

    page.get_by_role("link", name=re.compile("^Alerts")).click()

    first = page.locator("[data-list='open'] .alert-item").first
    expect(first).to_have_attribute("data-priority", "high")
    expect(first.locator(".alert-priority")).to_have_text("High !!!")
    expect(first.locator(".priority-icon-high")).to_be_visible()
    priorities = page.locator("[data-list='open'] .alert-item").evaluate_all(
        "items => items.map(i => i.dataset.priority)"
    )
    rank = {"high": 0, "medium": 1, "low": 2}
    states = page.locator("[data-list='open'] .alert-item").evaluate_all(
        "items => items.map(i => i.dataset.state)"
    )
    active = [rank[p] for p, s in zip(priorities, states, strict=True) if s == "active"]
    assert active == sorted(active), priorities


def test_acknowledged_on_one_tablet_shows_acknowledged_on_another(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    first = tablets("nurse").open()
    second = tablets("nurse").open()
    alert = severe_alert(clinic_server, 6)
    first.get_by_role("link", name=re.compile("^Alerts")).click()
    second.get_by_role("link", name=re.compile("^Alerts")).click()
    item = f".alert-item[data-alert-id='{alert.id}']"

    first.locator(f"{item} [data-action='acknowledge']").click()

    expect(second.locator(item)).to_have_attribute("data-state", "acknowledged")
    expect(second.locator(f"{item} .alert-status")).to_have_text(
        re.compile(r"^Acknowledged by nurse at \d\d:\d\d$")
    )
    expect(second.locator(f"{item} [data-action='acknowledge']")).to_have_count(0)


def test_nurse_snoozes_an_alert_for_a_limited_time(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    alert = severe_alert(clinic_server, 1)
    page = tablets("nurse").open("#/alerts")
    item = page.locator(f"[data-list='open'] .alert-item[data-alert-id='{alert.id}']")

    item.get_by_role("button", name="Snooze 5 min").click()

    expect(item).to_have_attribute("data-state", "snoozed")
    expect(item.locator(".alert-status")).to_have_text(re.compile(r"^Snoozed until \d\d:\d\d"))


def test_admin_sees_alerts_without_acknowledge_buttons(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    severe_alert(clinic_server, 5)
    page = tablets("admin").open()

    page.get_by_role("link", name=re.compile("^Alerts")).click()

    expect(page.locator("[data-list='open'] .alert-item").first).to_be_visible()
    expect(page.locator("[data-action='acknowledge'], [data-action='snooze']")).to_have_count(0)


def test_alarm_sounds_for_a_high_alert_only_after_the_first_touch(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    severe_alert(clinic_server, 5)
    page = tablets("nurse").open()  # signed in by cookie: nobody has touched this page yet
    expect(page.locator("#alert-banner")).to_have_attribute("data-priority", "high")
    expect(page.locator(".sound-state")).to_have_attribute("data-armed", "false")
    assert page.locator("body").get_attribute("data-alarm-sounds") is None

    page.locator("#alert-banner .banner-text").click()

    expect(page.locator(".sound-state")).to_have_attribute("data-armed", "true")
    # It sounds once armed. Since issue #14 a high alarm repeats until acknowledged, and
    # the module's earlier tests leave several high alerts, each sounding when the page
    # is armed: the count is any positive number by the time it is read, not exactly 1.
    expect(page.locator("body")).to_have_attribute("data-alarm-sounds", re.compile(r"^[1-9]\d*$"))


def test_sign_out_returns_to_the_login_form_and_stays_signed_out(tablets: TabletFactory) -> None:
    page = tablets("nurse").open()

    page.get_by_role("button", name="Sign out").click()

    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.reload()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.locator(".topbar")).to_be_hidden()

"""The session view and check tracking in a real browser (issue #7): entries made on the
session view appear on its chart; an overdue check shows on the tile and in the alert
list; a clinician overrides a dosing hold; closing a session empties the chair."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.clinic_actions import Reseated, reseat
from tests.browser.clinic_server import ClinicServer
from tests.browser.conftest import TabletFactory


def test_manual_reading_entered_in_the_session_view_appears_on_its_chart(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    session_id = clinic_server.sessions[1]
    page = tablets("nurse").open(f"#/session/{session_id}")
    form = page.locator("form[data-form='reading']")

    form.get_by_label("Systolic").fill("151")
    form.get_by_label("Diastolic").fill("93")
    form.get_by_label("Pulse").fill("88")
    form.get_by_role("button", name="Save reading").click()

    expect(form.locator(".form-status")).to_have_text("Saved")
    manual = page.locator(".timeline .reading[data-source='manual']")
    expect(manual).to_have_count(1)
    expect(manual.locator("title")).to_have_text(re.compile(r"Manual reading .*: 151/93 mmHg"))


def test_side_effect_entered_in_the_session_view_appears_on_its_chart(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    session_id = clinic_server.sessions[1]
    page = tablets("nurse").open(f"#/session/{session_id}")
    form = page.locator("form[data-form='side-effect']")

    form.get_by_label("Effect").select_option("dizziness")
    form.get_by_label("Severity").select_option(label="Moderate")
    form.get_by_label("Note").fill("asked to stay seated")
    form.get_by_role("button", name="Save side effect").click()

    marker = page.locator(".timeline .side-effect")
    expect(marker).to_have_count(1)
    expect(marker.locator(".effect-label")).to_have_text("Dizziness (moderate)")


@pytest.fixture(scope="module")
def overdue_seat(clinic_server: ClinicServer) -> Reseated:
    """Chair 4: dosed 29.5 simulated minutes ago, no reading since, so the 20-30 minute
    post-dose check (first session of a course, DESIGN.md "Clinical protocol") goes
    overdue half a simulated minute later."""
    return reseat(
        clinic_server,
        4,
        "TEST-OVERDUE",
        began_minutes_ago=45,
        baseline=(128, 82),
        dosed_minutes_ago=29.5,
    )


def test_overdue_check_shows_on_the_tile_and_in_the_alert_list(
    tablets: TabletFactory, overdue_seat: Reseated
) -> None:
    page = tablets("nurse").open()
    tile = page.locator(f".tile[data-chair-id='{overdue_seat.chair_id}']")

    expect(tile.locator(".tile-check")).to_have_attribute("data-check", "overdue")
    expect(tile.locator(".tile-check")).to_have_text(re.compile(r"^OVERDUE: Post-dose check"))
    page.get_by_role("link", name=re.compile("^Alerts")).click()
    item = page.locator(".alert-item[data-kind='check_overdue']").filter(has_text="Chair 4")
    expect(item).to_have_count(1)
    expect(item.locator(".alert-kind")).to_have_text("Check overdue")


def test_session_chart_marks_check_windows_by_state(
    tablets: TabletFactory, overdue_seat: Reseated
) -> None:
    page = tablets("nurse").open(f"#/session/{overdue_seat.session_id}")

    windows = page.locator(".timeline .check-window")
    expect(windows.and_(page.locator("[data-state='overdue']"))).to_have_count(1)
    expect(windows.and_(page.locator("[data-state='satisfied']"))).not_to_have_count(0)
    expect(page.locator(".timeline .check-overdue .check-label")).to_have_text("! overdue")


def test_clinician_waives_a_check_with_a_reason(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    # Dosed 5 simulated minutes ago: the post-dose check is still pending.
    seat = reseat(
        clinic_server,
        3,
        "TEST-WAIVE",
        began_minutes_ago=20,
        baseline=(124, 80),
        dosed_minutes_ago=5,
    )
    page = tablets("clinician").open(f"#/session/{seat.session_id}")
    form = page.locator("form[data-form='waive']")
    expect(form.get_by_label("Check")).to_contain_text("Post-dose check")

    picker = form.get_by_label("Check")
    post_dose = picker.locator("option", has_text="Post-dose check").get_attribute("value")
    assert post_dose is not None
    picker.select_option(post_dose)
    form.get_by_label("Reason").fill("patient asleep, reading at close instead")
    form.get_by_role("button", name="Waive check").click()

    row = page.locator(".checks-table tr[data-state='waived']")
    expect(row).to_have_count(1)
    expect(row.locator(".check-state")).to_have_text(
        "Waived: patient asleep, reading at close instead"
    )


def test_clinician_overrides_a_dosing_hold_from_the_session_view(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    # A baseline at or above 160/100 is a dosing hold (DESIGN.md "Thresholds").
    seat = reseat(clinic_server, 1, "TEST-HOLD", began_minutes_ago=10, baseline=(172, 106))
    page = tablets("clinician").open(f"#/session/{seat.session_id}")
    expect(page.locator(".alert-item[data-kind='dosing_hold']")).to_have_count(1)
    form = page.locator("form[data-form='dose']")
    expect(form.locator("h2")).to_have_text("Dose (dosing hold stands)")

    form.get_by_label("Amount").fill("35")
    form.get_by_label("Override reason").fill("repeat reading 150/92 after rest; reviewed")
    form.get_by_role("button", name="Override hold and record dose").click()

    expect(page.locator(".timeline .dose")).to_have_count(1)
    expect(page.locator(".timeline .dose .dose-label")).to_have_text("ketamine 35 mg IM")


def test_nurse_sees_no_dose_or_close_forms(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    page = tablets("nurse").open(f"#/session/{clinic_server.sessions[1]}")

    expect(page.locator("form[data-form='reading']")).to_be_visible()
    expect(page.locator("form[data-form='dose'], form[data-form='close']")).to_have_count(0)


def test_closing_a_session_leaves_an_empty_chair_on_the_ward(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    seat = reseat(clinic_server, 6, "TEST-CLOSE", began_minutes_ago=5, baseline=(118, 76))
    page = tablets("clinician").open(f"#/session/{seat.session_id}")
    form = page.locator("form[data-form='close']")

    form.get_by_label("Reason").fill("patient left before dosing")
    form.get_by_role("button", name="Close session").click()
    page.locator("dialog.confirm-dialog").get_by_role("button", name="Close session").click()

    expect(page.locator(".forms")).to_have_text("This session is closed.")
    page.get_by_role("link", name="Ward", exact=True).click()
    tile = page.locator(f".tile[data-chair-id='{seat.chair_id}']")
    expect(tile).to_have_attribute("data-occupied", "false")
    expect(tile.locator(".tile-empty-text")).to_have_text(
        "Empty · Admit"
    )  # a clinician may admit there (#14)


def test_live_updates_keep_what_a_nurse_has_entered_in_a_form(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    session_id = clinic_server.sessions[4]
    page = tablets("nurse").open(f"#/session/{session_id}")
    form = page.locator("form[data-form='side-effect']")
    form.get_by_label("Effect").select_option("anxiety")
    form.get_by_label("Severity").select_option(label="Severe")
    readings = page.evaluate("id => window.vitalsd.state.sessionReadings(id).length", session_id)

    # The chair's cuff measures every 5 simulated minutes (5 s here): the view redraws.
    page.wait_for_function(
        "([id, n]) => window.vitalsd.state.sessionReadings(id).length > n",
        arg=[session_id, readings],
        timeout=20_000,
    )
    page.wait_for_timeout(300)

    expect(form.get_by_label("Effect")).to_have_value("anxiety")
    expect(form.get_by_label("Severity")).to_have_value("3")

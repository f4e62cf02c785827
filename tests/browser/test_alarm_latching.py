"""Issue #13 in a real browser: a latched high alert stays on screen after its condition
clears (finding 8) and shows the value that raised it beside the latest; a closed
session leaves its chair clean for the next patient (finding 6)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.clinic_actions import NURSE, reseat
from tests.browser.clinic_server import ClinicServer
from tests.browser.conftest import TabletFactory


def manual(server: ClinicServer, session_id: int, systolic: float, diastolic: float) -> None:
    server.call(
        server.clinic.record_manual_reading(
            session_id, systolic=systolic, diastolic=diastolic, pulse_rate=80.0, by=NURSE
        )
    )


def test_finding_8_a_latched_high_alert_stays_on_screen_after_its_condition_clears(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    seat = reseat(clinic_server, 2, "TEST-LATCH", began_minutes_ago=5, baseline=(122, 78))
    page = tablets("nurse").open()
    manual(clinic_server, seat.session_id, 196, 118)
    manual(clinic_server, seat.session_id, 200, 120)  # not 10/5 worse: the latest only
    manual(clinic_server, seat.session_id, 118, 76)  # the condition clears
    found = clinic_server.call(
        clinic_server.clinic.list_alerts(session_id=seat.session_id, open_only=True)
    )
    [alert] = [a for a in found if a.kind == "severe_hypertension"]
    page.get_by_role("link", name=re.compile("^Alerts")).click()
    item = page.locator(f"[data-list='open'] .alert-item[data-alert-id='{alert.id}']")

    expect(item).to_have_attribute("data-state", "active")
    expect(item.locator(".alert-message")).to_contain_text("196/118")
    expect(item.locator(".alert-latest")).to_contain_text("200/120")
    expect(item.locator(".alert-latched")).to_have_text(
        re.compile(r"^Condition cleared at \d\d:\d\d - acknowledge$")
    )

    item.locator("[data-action='acknowledge']").click()
    expect(item).to_have_count(0)  # acknowledged after it cleared: resolved, off the list


def test_finding_6_a_closed_session_leaves_its_chair_clean(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    seat = reseat(clinic_server, 2, "TEST-BEFORE", began_minutes_ago=5, baseline=(122, 78))
    page = tablets("nurse").open()
    tile = page.locator(f".tile[data-chair-id='{seat.chair_id}']")
    manual(clinic_server, seat.session_id, 196, 118)
    expect(tile).to_have_attribute("data-alert", "high")
    standing = clinic_server.call(
        clinic_server.clinic.list_alerts(session_id=seat.session_id, open_only=True)
    )
    [alert] = [a for a in standing if a.kind == "severe_hypertension"]

    # The next patient sits down: the previous session is closed (with a reason).
    after = reseat(clinic_server, 2, "TEST-AFTER", began_minutes_ago=1, baseline=(120, 76))

    expect(tile).to_have_attribute("data-session-id", str(after.session_id))
    expect(tile).to_have_attribute("data-alert", "none")
    expect(tile.locator(".tile-alert")).not_to_contain_text("Severe")
    assert (
        clinic_server.call(
            clinic_server.clinic.list_alerts(session_id=seat.session_id, open_only=True)
        )
        == []
    )
    page.get_by_role("link", name=re.compile("^Alerts")).click()
    expect(
        page.locator(f"[data-list='open'] .alert-item[data-alert-id='{alert.id}']")
    ).to_have_count(0)


def test_finding_3_a_booster_over_a_standing_severe_alert_asks_for_the_override(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    """A post-dose severe reading (no dosing hold alert): the dose form asks the
    clinician's reason, and the booster goes through with it."""
    seat = reseat(
        clinic_server,
        3,
        "TEST-BOOSTER",
        began_minutes_ago=20,
        baseline=(122, 78),
        dosed_minutes_ago=10,
    )
    manual(clinic_server, seat.session_id, 196, 118)
    page = tablets("clinician").open(f"#/session/{seat.session_id}")
    expect(page.locator(".alert-item[data-kind='severe_hypertension']")).to_have_count(1)
    form = page.locator("form[data-form='dose']")
    expect(form.locator("h2")).to_have_text("Dose (dosing hold stands)")

    form.get_by_label("Amount").fill("20")
    form.get_by_label("Override reason").fill("planned booster; reviewed with the patient")
    form.get_by_role("button", name="Override hold and record dose").click()

    expect(page.locator(".timeline .dose")).to_have_count(2)

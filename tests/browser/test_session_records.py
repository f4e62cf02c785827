"""What nurses hit in the session view (issue #14): the dose form starts from the
protocol's dose and remembers this tablet's last one, closing asks first, doses (with
a hold override's reason) and side effects are listed, the header shows no "null"."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from playwright.sync_api import Page, expect

from tests.browser.clinic_actions import CLINICIAN, NURSE
from tests.browser.clinic_server import ClinicServer
from tests.browser.conftest import SCREENSHOTS, TabletFactory


@dataclass(frozen=True)
class Seat:
    chair_id: int
    session_id: int


async def _seat(
    server: ClinicServer,
    number: int,
    identifier: str,
    protocol: str,
    baseline: tuple[float, float] | None,
) -> Seat:
    clinic = server.clinic
    cuff = server.cuffs[number - 1]
    if cuff.in_range:
        await cuff.go_out_of_range()  # only the test records readings on this chair
    chair = next(c for c in await clinic.list_chairs() if c.name == f"Chair {number}")
    if chair.session_id is not None:
        await clinic.close_session(chair.session_id, by=CLINICIAN, reason="test: chair reseated")
    patient = await clinic.create_patient(
        identifier, f"Test Patient {identifier}", date(1979, 3, 9), by=CLINICIAN
    )
    now = server.running.clock.now()
    session = await clinic.start_session(
        patient.id,
        chair.id,
        by=CLINICIAN,
        protocol=protocol,
        started_at=now - timedelta(minutes=10),
    )
    for minutes_ago in (8, 6) if baseline else ():  # the baseline averages two readings
        await clinic.record_manual_reading(
            session.id,
            systolic=baseline[0],
            diastolic=baseline[1],
            pulse_rate=70.0,
            by=NURSE,
            measured_at=now - timedelta(minutes=minutes_ago),
        )
    return Seat(chair.id, session.id)


def seat(
    server: ClinicServer,
    number: int,
    identifier: str,
    protocol: str = "ketamine-psychotherapy",
    baseline: tuple[float, float] | None = (122, 78),
) -> Seat:
    """Chair <number> gets a new patient under `protocol` with a two-reading baseline
    (none when `baseline` is None)."""
    return server.call(_seat(server, number, identifier, protocol, baseline))


def dose_form(page: Page, session_id: int) -> Page:
    page.locator(f"[data-view='session'][data-session-id='{session_id}']").wait_for()
    page.locator("form[data-form='dose'][data-defaults='ready']").wait_for()
    return page


def test_the_dose_form_starts_from_the_protocol_and_then_from_this_tablets_last_dose(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    seated = seat(clinic_server, 1, "TEST-ESK", protocol="esketamine-rems")
    tablet = tablets("clinician")
    page = dose_form(tablet.open(f"#/session/{seated.session_id}"), seated.session_id)
    form = page.locator("form[data-form='dose']")
    expect(form.get_by_label("Drug")).to_have_value("esketamine")
    expect(form.get_by_label("Route")).to_have_value("intranasal")
    expect(form.get_by_label("Amount")).to_have_value("28")

    form.get_by_label("Amount").fill("56")
    form.get_by_role("button", name="Record dose").click()
    row = page.locator(".doses-table tr[data-dose-id]")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Esketamine 56 mg intranasal")
    expect(form.get_by_label("Amount")).to_have_value("56")  # kept for the next dose

    page.reload()
    page = dose_form(tablet.wait_until_live(), seated.session_id)
    form = page.locator("form[data-form='dose']")
    expect(form.get_by_label("Drug")).to_have_value("esketamine")
    expect(form.get_by_label("Amount")).to_have_value("56")
    page.locator(".dose-list").scroll_into_view_if_needed()
    page.screenshot(path=SCREENSHOTS / "session-doses-landscape.png")


def test_the_dose_list_shows_a_hold_overrides_reason(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    # A baseline at or above 160/100 is a dosing hold (DESIGN.md "Thresholds").
    seated = seat(clinic_server, 2, "TEST-OVR", baseline=(172, 106))
    page = dose_form(tablets("clinician").open(f"#/session/{seated.session_id}"), seated.session_id)
    form = page.locator("form[data-form='dose']")
    expect(form.locator("h2")).to_have_text("Dose (dosing hold stands)")
    form.get_by_label("Amount").fill("35")
    form.get_by_label("Override reason").fill("repeat 150/92 after rest; reviewed")
    form.get_by_role("button", name="Override hold and record dose").click()

    row = page.locator(".doses-table tr[data-dose-id]")
    expect(row.locator(".dose-override")).to_have_text(
        "Hold overridden: repeat 150/92 after rest; reviewed"
    )


def test_the_dose_list_says_a_dose_was_given_without_a_baseline(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    """A dose flag (DESIGN.md "Dosing gate": `no_baseline`) is shown in words."""
    seated = seat(clinic_server, 4, "TEST-NOBL", baseline=None)
    page = dose_form(tablets("clinician").open(f"#/session/{seated.session_id}"), seated.session_id)
    form = page.locator("form[data-form='dose']")
    form.get_by_label("Amount").fill("35")
    form.get_by_role("button", name="Record dose").click()
    row = page.locator(".doses-table tr[data-dose-id]")
    expect(row.locator(".dose-flags")).to_have_text("No baseline reading before it")
    expect(row.locator(".dose-override")).to_have_text("--")


def test_closing_a_session_asks_first_and_cancelling_keeps_it_open(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    seated = seat(clinic_server, 5, "TEST-ASK")
    page = tablets("clinician").open(f"#/session/{seated.session_id}")
    form = page.locator("form[data-form='close']")
    form.get_by_label("Reason").fill("patient left before dosing")
    form.get_by_role("button", name="Close session").click()
    confirm = page.locator("dialog.confirm-dialog")
    expect(confirm).to_contain_text("Close this session?")
    page.screenshot(path=SCREENSHOTS / "session-close-confirm-landscape.png")
    confirm.get_by_role("button", name="Keep it open").click()
    expect(form.locator(".form-status")).to_have_text("Not closed: the session stays open.")
    assert clinic_server.call(clinic_server.clinic.get_session(seated.session_id)).closed_at is None

    form.get_by_label("Reason").fill("patient left before dosing")
    form.get_by_role("button", name="Close session").click()
    confirm.get_by_role("button", name="Close session").click()
    expect(page.locator(".forms")).to_have_text("This session is closed.")


def test_the_session_lists_its_side_effects_and_its_header_has_no_null(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    seated = seat(clinic_server, 6, "TEST-SFX")
    page = tablets("nurse").open(f"#/session/{seated.session_id}")
    expect(page.locator(".side-effects-table")).to_be_visible()
    form = page.locator("form[data-form='side-effect']")
    form.get_by_label("Effect").select_option("nausea")
    form.get_by_label("Severity").select_option(label="Moderate")
    form.get_by_label("Note").fill("settled with a cold cloth")
    form.get_by_role("button", name="Save side effect").click()

    row = page.locator(".side-effects-table tr[data-side-effect-id]")
    expect(row).to_have_count(1)
    expect(row.locator(".side-effect-name")).to_have_text("Nausea")
    expect(row.locator(".side-effect-severity")).to_have_text("Moderate")
    expect(row.locator(".side-effect-note")).to_have_text("settled with a cold cloth")
    expect(row.locator("td").first).to_have_text(re.compile(r"^\d\d:\d\d$"))
    head = page.locator(".session-head").inner_text()
    assert "null" not in head and "undefined" not in head
    page.locator(".side-effect-list").scroll_into_view_if_needed()
    page.screenshot(path=SCREENSHOTS / "session-side-effects-landscape.png")

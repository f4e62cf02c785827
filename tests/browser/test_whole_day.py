"""A clinic's whole day from the tablet (issue #14, "Done when"), in Debian's Chromium at
both tablet sizes, by clicking only: no REST call sets anything up and no deep URL is
typed after signing in (each tablet opens the dashboard's address and signs in through
its form, then goes by nav links, tiles and buttons).

The day starts on an empty ward (the demo's chairs with their cuffs, nobody seated):
the admin creates a nurse's account and a chair, and moves the simulated cuff of Chair 1
onto it; the clinician registers a patient and admits them from the new chair's empty
tile under the esketamine REMS protocol; the nurse the admin created signs in with her
new password and takes the baseline (a manual reading typed into the session's form);
the clinician doses esketamine; the patient's pressure then turns severe on the
simulated cuff itself (the test drives the simulated patient and has the cuff measure:
the reading goes the real BLE path), so a high alarm sounds on the nurse's tablet and
repeats (counted on the page's fake clock, `page.clock`) until she acknowledges it,
after which it stops; the alarm history shows it with her name after a reload; the
patient settles (the cuff's next reading is normal) and the clinician closes the session
without a reason through its confirmation dialog; the report PDF, REMS form, FHIR Bundle
and CSV come from their buttons and are checked; the patient's page lists the session.

The only reach into the server: the simulated patient's pressure and the cuff's
"measure now" (what a real patient and cuff would do), and the simulated patient's own
scheduled dose response is taken away (nobody doses it but the clinician's form).
Screenshots of each step: artifacts/screenshots/whole-day-*.png.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Final

import pytest
from fhir.resources.R4B.bundle import Bundle
from playwright.sync_api import Download, Page, ViewportSize, expect
from pypdf import PdfReader

from simulators.cuff import SimulatedCuff
from tests.browser.clinic_actions import SEVERE
from tests.browser.clinic_server import PASSWORD, ClinicServer
from tests.browser.conftest import LANDSCAPE, PORTRAIT, SCREENSHOTS, Tablet, TabletFactory

SIZES = [pytest.param(LANDSCAPE, id="landscape"), pytest.param(PORTRAIT, id="portrait")]
# The cuff the admin puts on the new chair: Chair 1's, a normotensive patient.
CUFF_INDEX: Final = 0
NURSE_PASSWORD: Final = "the-new-nurses-own-password"
# api/static/js/alarm-control.js: a high alarm's tone repeats every 5 s.
HIGH_REPEAT_MS: Final = 5_000
SYNC_TIMEOUT_S: Final = 20.0
# Simulated seconds per real second: the REMS protocol's 2 hours of observation after
# the dose pass in a minute, the cuff measuring every 2.5 s.
DAY_SPEED: Final = 120.0
CLOSE_OPENS_AFTER_DOSE_S: Final = 120 * 60
CLOSE_WAIT_MS: Final = 1000 * (CLOSE_OPENS_AFTER_DOSE_S / DAY_SPEED + 30)
REMS_FIELDS: Final = (
    "Blood pressure prior to administration",
    "About 40 minutes post-administration",
    "Prior to treatment session completion",
    "Vital signs acceptable prior to administration",
    "Total monitoring time",
)


@pytest.fixture(scope="module")
def clinic_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClinicServer]:
    """The morning: six chairs with their cuffs and nobody seated, so the only alarm of
    the day is the one the walk raises."""
    server = ClinicServer(tmp_path_factory.mktemp("clinic"), speed=DAY_SPEED, seated=False)
    server.start()
    cuff = server.cuffs[CUFF_INDEX]
    server.running.loop.call_soon_threadsafe(cuff.doses.clear)  # dosed by the clinician only
    try:
        yield server
    finally:
        server.stop()


def size_of(viewport: ViewportSize) -> str:
    return f"{viewport['width']}x{viewport['height']}"


def shot(tablet: Tablet, step: str, size: str) -> None:
    """A screenshot of the step; the screen fits the tablet's width (no sideways page)."""
    tablet.screenshot(f"whole-day-{step}-{size}")
    fits = tablet.page.evaluate("() => document.documentElement.scrollWidth <= innerWidth")
    assert fits, f"{step} at {size} is wider than the screen"


def sign_in(tablet: Tablet, username: str, password: str = PASSWORD) -> Page:
    """Open the dashboard's address and sign in through its form (the ward may be empty,
    so this waits for the stream and a tile, not an occupied one)."""
    page = tablet.page
    page.goto(tablet.base_url)
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.locator("#connection[data-status='live']").wait_for()
    page.locator(".tile").first.wait_for()
    return page


def set_patient_pressure(
    server: ClinicServer, cuff: SimulatedCuff, bp: tuple[float, float]
) -> None:
    """The simulated patient's resting pressure becomes `bp` (the cuff measures it)."""
    systolic, diastolic = bp

    def change() -> None:
        cuff.patient = replace(
            cuff.patient, baseline_systolic=systolic, baseline_diastolic=diastolic
        )

    server.running.loop.call_soon_threadsafe(change)


def high_plays(page: Page) -> int:
    count: str = page.evaluate("() => document.body.dataset.alarmHighPlays || '0'")
    return int(count)


def wait_for_page(page: Page, condition: str, what: str, arg: object = None) -> None:
    """Poll the page's state from here (the nurse's page runs on a fake clock, so no
    wait_for_function, which polls on the page's own timers)."""
    deadline = time.monotonic() + SYNC_TIMEOUT_S
    while not page.evaluate(condition, arg):
        if time.monotonic() > deadline:
            raise AssertionError(f"the page never showed {what}")
        time.sleep(0.05)


def download(page: Page, selector: str) -> tuple[Download, bytes]:
    with page.expect_download() as info:
        page.locator(selector).click()
    return info.value, Path(info.value.path()).read_bytes()


@pytest.mark.parametrize("viewport", SIZES)
def test_a_clinics_whole_day_from_the_tablet(
    tablets: TabletFactory, clinic_server: ClinicServer, viewport: ViewportSize
) -> None:
    size = size_of(viewport)
    nurse_name = f"day-nurse-{size}"
    chair_name = f"Window {size}"
    identifier = f"DAY-{size}"
    patient_name = f"Jordan Day {size}"
    cuff = clinic_server.cuffs[CUFF_INDEX]
    address = cuff.config.address.upper()
    resting = (cuff.patient.baseline_systolic, cuff.patient.baseline_diastolic)

    # -- the admin: a nurse's account, a chair, the cuff on it ---------------------------------
    admin = tablets(viewport=viewport)
    page = sign_in(admin, "admin")
    page.get_by_role("link", name="Admin").click()
    expect(page.locator(".admin-view")).to_have_attribute("data-section", "users")
    form = page.locator("form[data-form='new-user']")
    form.get_by_label("User name").fill(nurse_name)
    form.get_by_label("Role").select_option("nurse")
    form.get_by_label("Password").fill(NURSE_PASSWORD)
    form.get_by_role("button", name="Create user").click()
    expect(page.locator(f"tr[data-username='{nurse_name}']")).to_have_attribute(
        "data-state", "active"
    )
    shot(admin, "admin-user", size)

    page.locator(".admin-nav").get_by_role("link", name="Chairs").click()
    form = page.locator("form[data-form='new-chair']")
    form.get_by_label("Chair name").fill(chair_name)
    form.get_by_role("button", name="Add chair").click()
    chair_row = page.locator("tr[data-chair-id]", has_text=chair_name)
    expect(chair_row.locator(".chair-state")).to_have_text("Free")
    chair_id = chair_row.get_attribute("data-chair-id") or ""
    assert chair_id.isdigit(), chair_id
    shot(admin, "admin-chair", size)

    page.locator(".admin-nav").get_by_role("link", name="Cuffs").click()
    cuff_row = page.locator(f"tr[data-address='{address}']")
    cuff_row.get_by_label(f"New chair for cuff {address}").select_option(chair_id)
    cuff_row.get_by_role("button", name="Assign").click()
    expect(page.locator(f"tr[data-address='{address}'] .cuff-chair")).to_have_text(chair_name)
    shot(admin, "admin-cuff", size)

    # -- the clinician: registers the patient, admits from the empty tile ----------------------
    clinician = tablets(viewport=viewport)
    page = sign_in(clinician, "clinician")
    tile = page.locator(f".tile[data-chair-id='{chair_id}']")
    expect(tile).to_have_attribute("data-admit", "true")
    shot(clinician, "ward-empty", size)
    tile.click()
    expect(page.locator("section[data-view='admit']")).to_be_visible()
    expect(page.locator("select[name='chair_id']")).to_have_value(chair_id)
    page.get_by_label("Find a patient").fill(identifier)
    expect(page.locator(".patient-results")).to_contain_text("No patient matches")
    register = page.locator("form[data-form='register']")
    register.get_by_label("Identifier").fill(identifier)
    register.get_by_label("Name").fill(patient_name)
    register.get_by_label("Date of birth").fill("1981-02-11")
    register.get_by_role("button", name="Register patient").click()
    expect(page.locator(".chosen-patient")).to_contain_text(identifier)
    expect(page.locator(".course-note")).to_contain_text("Session 1 of the course")
    page.locator("select[name='protocol']").select_option("esketamine-rems")
    expect(page.locator("select[name='cuff_address']")).to_have_value(address)
    expect(page.locator("[data-confirm='cuff']")).to_be_hidden()
    shot(clinician, "admission", size)
    page.get_by_role("button", name="Start session").click()
    expect(page).to_have_url(re.compile(r"#/session/\d+$"))
    session_id = int(page.url.rsplit("/", 1)[1])
    session_view = page.locator(f"[data-view='session'][data-session-id='{session_id}']")
    expect(session_view).to_be_visible()

    # -- the new nurse: signs in with her password, takes the baseline -------------------------
    nurse = tablets(viewport=viewport)
    nurse.page.clock.install()  # the alarm's repeats are counted on the page's own clock
    page = sign_in(nurse, nurse_name, NURSE_PASSWORD)
    expect(page.locator(".user")).to_have_text(f"{nurse_name} · nurse")
    # Tapping "Sign in" was the gesture that let the page make sound.
    expect(page.locator(".alarm-audio")).to_have_attribute("data-sound", "on")
    page.locator(f".tile[data-chair-id='{chair_id}']").click()
    expect(page.locator(f"[data-view='session'][data-session-id='{session_id}']")).to_be_visible()
    reading = page.locator("form[data-form='reading']")
    reading.get_by_label("Systolic").fill(str(round(resting[0])))
    reading.get_by_label("Diastolic").fill(str(round(resting[1])))
    reading.get_by_label("Pulse").fill("72")
    reading.get_by_role("button", name="Save reading").click()
    expect(reading.locator(".form-status")).to_have_text("Saved")
    expect(page.locator(".readings-table")).to_contain_text(f"Manual, {nurse_name}")
    expect(page.locator(".session-subtitle")).to_contain_text("baseline")
    shot(nurse, "baseline", size)

    # -- the clinician doses esketamine ---------------------------------------------------------
    page = clinician.page
    dose = page.locator("form[data-form='dose'][data-defaults='ready']")
    expect(dose.get_by_label("Drug")).to_have_value("esketamine")
    expect(dose.get_by_label("Route")).to_have_value("intranasal")
    dose.get_by_label("Amount").fill("56")
    dose.get_by_role("button", name="Record dose").click()
    expect(page.locator(".doses-table tr[data-dose-id]")).to_contain_text(
        "Esketamine 56 mg intranasal"
    )
    shot(clinician, "dosed", size)

    # -- a severe reading from the cuff: the alarm repeats until the nurse acknowledges -------
    page = nurse.page
    set_patient_pressure(clinic_server, cuff, SEVERE)
    clinic_server.call(cuff.measure())
    # The patient settles at once; the high alarm stays latched until acknowledged.
    set_patient_pressure(clinic_server, cuff, resting)
    wait_for_page(
        page,
        "id => window.vitalsd.state.alertsOfSession(id).some("
        "a => a.kind === 'severe_hypertension' && a.state === 'active')",
        "the severe alert",
        session_id,
    )
    wait_for_page(page, "() => Number(document.body.dataset.alarmHighPlays || 0) >= 1", "a tone")
    for _ in range(3):
        before = high_plays(page)
        page.clock.run_for(HIGH_REPEAT_MS + 500)
        assert high_plays(page) > before, "the high alarm did not repeat while unacknowledged"
    shot(nurse, "alarm", size)

    page.get_by_role("link", name="Alerts").first.click()
    item = page.locator("[data-list='open'] .alert-item[data-kind='severe_hypertension']")
    expect(item).to_have_count(1)
    alert_id = item.get_attribute("data-alert-id") or ""
    assert alert_id.isdigit(), alert_id
    shot(nurse, "alerts", size)
    item.locator("[data-action='acknowledge']").click()
    wait_for_page(
        page,
        "id => !window.vitalsd.state.openAlerts().some("
        "a => String(a.id) === id && a.state === 'active')",
        "the acknowledgement",
        alert_id,
    )
    after = high_plays(page)
    page.clock.run_for(6 * HIGH_REPEAT_MS)
    assert high_plays(page) == after, "the alarm still sounds after the acknowledgement"

    # -- the alarm history, after a reload, says who acknowledged it ---------------------------
    page.get_by_role("link", name="Alarm history ›").click()
    page.reload()
    page.locator("#connection[data-status='live']").wait_for()
    history = page.locator(".history-view[data-loaded='true']")
    expect(history).to_be_visible()
    entry = history.locator(f".history-item[data-alert-id='{alert_id}']")
    expect(entry.locator("[data-action='raised']")).to_have_count(1)
    expect(entry.locator("[data-action='acknowledged']")).to_have_text(
        re.compile(rf"\d\d:\d\d Acknowledged by {re.escape(nurse_name)}$")
    )
    shot(nurse, "alarm-history", size)

    # -- the patient settled: the clinician closes without a reason, confirmed -----------------
    # The REMS protocol observes for 2 hours after the dose: the clinician waits for the
    # close-of-session check, which the cuff's next reading then answers.
    page = clinician.page
    close_check = page.locator(".checks-table tr", has_text="Close-of-session check")
    expect(close_check).to_have_attribute("data-state", "satisfied", timeout=CLOSE_WAIT_MS)
    expect(page.locator(".session-view .alert-item")).to_have_count(0)
    close = page.locator("form[data-form='close']")
    close.get_by_role("button", name="Close session").click()
    confirm = page.locator("dialog.confirm-dialog")
    expect(confirm).to_contain_text("Close this session?")
    shot(clinician, "close-confirm", size)
    confirm.get_by_role("button", name="Close session").click()
    expect(page.locator(".forms")).to_have_text("This session is closed.")
    expect(page.locator(".closed-header")).to_contain_text("by clinician")

    # -- the exports, each from its button ------------------------------------------------------
    expect(page.locator(".session-exports")).to_be_visible()
    page.locator(".session-head").scroll_into_view_if_needed()
    shot(clinician, "closed", size)
    got, pdf = download(page, "[data-export='pdf']")
    assert got.suggested_filename == f"session-{session_id}-report.pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert patient_name in text

    _, raw = download(page, "[data-export='fhir']")
    bundle = json.loads(raw)
    Bundle.model_validate(bundle)
    codes = {
        coding["code"]
        for entry in bundle["entry"]
        if entry["resource"]["resourceType"] == "Observation"
        for coding in entry["resource"]["code"].get("coding", [])
    }
    assert "85354-9" in codes  # LOINC: blood pressure panel

    _, raw = download(page, "[data-export='csv']")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))
    pressures = [float(r["Systolic (mmHg)"]) for r in rows if r["Systolic (mmHg)"]]
    assert float(round(resting[0])) in pressures  # the nurse's baseline
    assert max(pressures) >= SEVERE[0] - 20  # the cuff's severe reading

    with page.expect_popup() as popup:
        page.locator("[data-export='rems']").click()
    rems = popup.value
    expect(rems.locator("h1")).to_contain_text("REMS patient monitoring form")
    for field in REMS_FIELDS:
        expect(rems.locator("#rems")).to_contain_text(field)
    rems.set_viewport_size(viewport)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    rems.screenshot(path=SCREENSHOTS / f"whole-day-rems-form-{size}.png")
    rems.close()

    # -- the patient's page lists the session ---------------------------------------------------
    page.get_by_role("link", name="Patients").first.click()
    page.get_by_label("Find a patient").fill(identifier.lower())
    rows_found = page.locator(".patients-table tbody tr")
    expect(rows_found).to_have_count(1)
    rows_found.first.get_by_role("link", name=identifier).click()
    row = page.locator(f".history-table tr[data-session-id='{session_id}']")
    expect(row).to_have_attribute("data-closed", "true")
    expect(row).to_contain_text("esketamine 56 mg intranasal")
    expect(row).to_contain_text("Severe hypertension")
    shot(clinician, "patient", size)

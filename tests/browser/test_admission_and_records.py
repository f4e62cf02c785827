"""A clinic's whole day from the tablet (issue #14) in real Chromium: admitting a new
patient from an empty chair (moving a cuff from a chair in session, confirmed with a
reason), the patients list and a patient's history, a closed session read-only, and
every export downloaded from its button and checked."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

import pytest
from fhir.resources.R4B.bundle import Bundle
from playwright.sync_api import Download, Page, ViewportSize, expect
from pypdf import PdfReader

from tests.browser.clinic_actions import CLINICIAN, NURSE, chair_id
from tests.browser.clinic_server import ClinicServer
from tests.browser.conftest import LANDSCAPE, PORTRAIT, SCREENSHOTS, SPEED, TabletFactory
from tests.browser.page_checks import low_contrast, small_targets
from vitalsd.domain import Drug, Route
from vitalsd.views import SessionView

SIZES = [pytest.param(LANDSCAPE, id="landscape"), pytest.param(PORTRAIT, id="portrait")]
# Not UTC, so a time that carries the clinic's offset is told from one in UTC.
CLINIC_ZONE: Final = "America/New_York"
# Per tablet size: the empty chair the admission fills and the chair in session whose
# cuff it takes (each test of a module shares one clinic).
ADMISSION_CHAIRS: Final = {"1280x800": (5, 1), "800x1280": (6, 2)}


@pytest.fixture(scope="module")
def clinic_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClinicServer]:
    server = ClinicServer(tmp_path_factory.mktemp("clinic"), speed=SPEED, timezone=CLINIC_ZONE)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def size_of(viewport: ViewportSize) -> str:
    return f"{viewport['width']}x{viewport['height']}"


def empty_chair(server: ClinicServer, number: int) -> int:
    """Close the open session of Chair <number> (it keeps its cuff); returns its id."""
    chair = chair_id(server, number)
    for session in server.call(server.clinic.list_sessions(open_only=True, chair_id=chair)):
        server.call(server.clinic.close_session(session.id, by=CLINICIAN, reason="test: free"))
    return chair


def closed_session(
    server: ClinicServer,
    number: int,
    identifier: str,
    *,
    protocol: str = "esketamine-rems",
    drug: Drug = Drug.ESKETAMINE,
    after_dose: tuple[float, float] = (146.0, 90.0),
    side_effect: str | None = None,
) -> SessionView:
    """A session of the patient `identifier` (registered if new) on Chair <number>
    (after closing the chair's own): a manual baseline, a dose, a manual reading
    `after_dose`, optionally a mild side effect, closed by the clinician. Returns the
    closed session. The chair's cuff goes out of range first: a reading of its own would
    land in the session and change its peak."""
    cuff = server.cuffs[number - 1]
    if cuff.in_range:
        server.call(cuff.go_out_of_range())
    chair = empty_chair(server, number)
    clinic = server.clinic
    known = server.call(clinic.list_patients(search=identifier))
    patient = (
        known[0]
        if known
        else server.call(
            clinic.create_patient(
                identifier, f"Record Patient {identifier}", date(1979, 4, 2), by=CLINICIAN
            )
        )
    )
    started = server.call(clinic.admit(patient.id, chair, by=CLINICIAN, protocol=protocol))
    server.call(
        clinic.record_manual_reading(
            started.id, systolic=132.0, diastolic=84.0, pulse_rate=71.0, by=NURSE
        )
    )
    server.call(
        clinic.record_dose(
            started.id,
            drug=drug,
            amount_mg=56.0,
            route=Route.INTRANASAL,
            by=CLINICIAN,
        )
    )
    systolic, diastolic = after_dose
    server.call(
        clinic.record_manual_reading(
            started.id, systolic=systolic, diastolic=diastolic, pulse_rate=80.0, by=NURSE
        )
    )
    if side_effect is not None:
        server.call(clinic.record_side_effect(started.id, effect=side_effect, severity=1, by=NURSE))
    server.call(clinic.close_session(started.id, by=CLINICIAN, reason="test: record done"))
    return server.call(clinic.get_session(started.id))


# -- admission -------------------------------------------------------------------------------


@pytest.mark.parametrize("viewport", SIZES)
def test_a_new_patient_is_registered_and_admitted_from_an_empty_tile_moving_a_cuff(
    tablets: TabletFactory, clinic_server: ClinicServer, viewport: ViewportSize
) -> None:
    size = size_of(viewport)
    number, donor = ADMISSION_CHAIRS[size]
    chair = empty_chair(clinic_server, number)
    donor_chair = chair_id(clinic_server, donor)
    chairs = {c.id: c for c in clinic_server.call(clinic_server.clinic.list_chairs())}
    cuff = chairs[donor_chair].cuff_address
    assert cuff is not None and chairs[donor_chair].session_id is not None
    identifier = f"NEW-{size}"
    tablet = tablets("clinician", viewport=viewport)
    page = tablet.open()

    tile = page.locator(f".tile[data-chair-id='{chair}']")
    expect(tile).to_have_attribute("data-admit", "true")
    tile.click()
    view = page.locator("section[data-view='admit']")
    expect(view).to_be_visible()
    expect(page.locator("select[name='protocol']")).to_have_value("ketamine-psychotherapy")
    expect(page.locator("select[name='chair_id']")).to_have_value(str(chair))

    page.get_by_label("Find a patient").fill(identifier.lower())
    expect(page.locator(".patient-results")).to_contain_text("No patient matches")
    register = page.locator("form[data-form='register']")
    register.get_by_label("Identifier").fill(identifier)
    register.get_by_label("Name").fill(f"Robin Admitted {size}")
    register.get_by_label("Date of birth").fill("1984-07-09")
    register.get_by_role("button", name="Register patient").click()
    expect(page.locator(".chosen-patient")).to_contain_text(identifier)
    expect(page.locator(".course-note")).to_contain_text("Session 1 of the course")

    page.locator("select[name='cuff_address']").select_option(cuff)
    confirm = page.locator("[data-confirm='cuff']")
    expect(confirm).to_be_visible()
    expect(confirm).to_contain_text(f"Chair {donor}")
    tablet.screenshot(f"admission-{size}")
    page.get_by_label("Reason for moving the cuff").fill("test: this chair's cuff is charging")
    page.get_by_role("button", name="Move the cuff and start").click()

    expect(page).to_have_url(re.compile(r"#/session/\d+$"))
    session_id = int(page.url.rsplit("/", 1)[1])
    started = clinic_server.call(clinic_server.clinic.get_session(session_id))
    assert (started.chair_id, started.course_session) == (chair, 1)
    chairs = {c.id: c for c in clinic_server.call(clinic_server.clinic.list_chairs())}
    assert chairs[chair].cuff_address == cuff
    assert chairs[donor_chair].cuff_address is None


def test_an_empty_chairs_tile_opens_the_admission_from_the_keyboard(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    chair = empty_chair(clinic_server, 4)
    page = tablets("clinician").open()
    tile = page.locator(f".tile[data-chair-id='{chair}']")
    expect(tile).to_have_attribute("data-admit", "true")

    tile.focus()
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(rf"#/admit/{chair}$"))
    expect(page.locator("section[data-view='admit']")).to_be_visible()


def test_a_nurse_sees_an_empty_chair_but_cannot_admit(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    chair = empty_chair(clinic_server, 4)
    page = tablets("nurse").open()
    tile = page.locator(f".tile[data-chair-id='{chair}']")
    expect(tile).to_have_attribute("data-occupied", "false")
    expect(tile).to_have_attribute("aria-disabled", "true")


# -- patients and history ----------------------------------------------------------------------


@pytest.mark.parametrize("viewport", SIZES)
def test_patient_search_finds_the_patient_and_their_page_lists_the_closed_session(
    tablets: TabletFactory, clinic_server: ClinicServer, viewport: ViewportSize
) -> None:
    size = size_of(viewport)
    identifier = f"HIST-{size}"
    earlier = closed_session(clinic_server, 3, identifier, side_effect="nausea")
    closed = closed_session(clinic_server, 3, identifier, after_dose=(184.0, 100.0))
    tablet = tablets("clinician", viewport=viewport)
    page = tablet.open("#/patients")

    page.get_by_label("Find a patient").fill(f"record patient hist-{size}".upper())
    rows = page.locator(".patients-table tbody tr")
    expect(rows).to_have_count(1)
    tablet.screenshot(f"patients-{size}")
    rows.first.get_by_role("link", name=f"HIST-{size}").click()

    row = page.locator(f".history-table tr[data-session-id='{closed.id}']")
    expect(row).to_be_visible()
    expect(row).to_have_attribute("data-closed", "true")
    expect(row).to_contain_text("esketamine 56 mg intranasal")
    expect(row).to_contain_text("184/100")  # the peak
    expect(row).to_contain_text("Severe hypertension")
    expect(row).to_contain_text("Session 2 of the course")
    expect(row).to_contain_text("by clinician")
    first = page.locator(f".history-table tr[data-session-id='{earlier.id}']")
    expect(first).to_contain_text("146/90")
    expect(first).to_contain_text("Nausea (mild)")
    expect(first).to_contain_text("Session 1 of the course")
    expect(page.locator("section[data-view='patient'] h1")).to_contain_text(f"HIST-{size}")
    tablet.screenshot(f"patient-history-{size}")

    row.get_by_role("link").first.click()
    expect(page).to_have_url(re.compile(rf"#/session/{closed.id}$"))


def test_a_closed_session_opens_read_only_under_who_closed_it(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    closed = closed_session(clinic_server, 3, "READONLY-1")
    page = tablets("clinician").open(f"#/session/{closed.id}")

    header = page.locator(".closed-header")
    expect(header).to_be_visible()
    expect(header).to_have_text(re.compile(r"^Closed at \d{4}-\d\d-\d\d \d\d:\d\d by clinician"))
    expect(header).to_contain_text("test: record done")
    for form in ("reading", "side-effect", "dose", "waive", "close"):
        expect(page.locator(f"form[data-form='{form}']")).to_have_count(0)
    expect(page.locator(".forms")).to_contain_text("This session is closed.")


# -- exports -------------------------------------------------------------------------------------


def _download(page: Page, selector: str) -> tuple[Download, bytes]:
    with page.expect_download() as info:
        page.locator(selector).click()
    download = info.value
    path = download.path()
    return download, Path(path).read_bytes()


def _offset_at(moment: datetime) -> timedelta | None:
    return moment.astimezone(ZoneInfo(CLINIC_ZONE)).utcoffset()


def test_every_session_export_button_downloads_a_file_that_checks_out(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    closed = closed_session(clinic_server, 3, "EXPORT-1")
    tablet = tablets("clinician")
    page = tablet.open(f"#/session/{closed.id}")
    expect(page.locator(".session-exports")).to_be_visible()
    tablet.screenshot("session-closed-exports-1280x800")

    download, pdf = _download(page, "[data-export='pdf']")
    assert download.suggested_filename == f"session-{closed.id}-report.pdf"
    assert pdf.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(pdf))
    text = "".join(p.extract_text() for p in reader.pages)
    assert "Record Patient EXPORT-1" in text

    download, raw = _download(page, "[data-export='fhir']")
    bundle = json.loads(raw)
    Bundle.model_validate(bundle)
    assert bundle["resourceType"] == "Bundle"
    observations = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
    ]
    codes = {c["code"] for o in observations for c in o["code"].get("coding", [])}
    assert {"85354-9", "8867-4"} <= codes
    for observation in observations:
        moment = datetime.fromisoformat(observation["effectiveDateTime"])
        assert moment.utcoffset() == _offset_at(moment)

    download, raw = _download(page, "[data-export='csv']")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))
    assert [(float(r["Systolic (mmHg)"]), float(r["Diastolic (mmHg)"])) for r in rows] == [
        (132.0, 84.0),
        (146.0, 90.0),
    ]
    for row in rows:
        moment = datetime.fromisoformat(row["Measured at"])
        assert moment.utcoffset() == _offset_at(moment) != timedelta(0)

    with page.expect_popup() as popup:
        page.locator("[data-export='report']").click()
    report = popup.value
    expect(report.locator("h1")).to_contain_text(f"Session {closed.id}")
    expect(report.locator("#readings")).to_contain_text("146 mmHg")
    report.close()

    with page.expect_popup() as popup:
        page.locator("[data-export='rems']").click()
    form = popup.value
    expect(form.locator("h1")).to_contain_text("REMS patient monitoring form")
    for field in (
        "Blood pressure prior to administration",
        "About 40 minutes post-administration",
        "Prior to treatment session completion",
        "Vital signs acceptable prior to administration",
        "Total monitoring time",
    ):
        expect(form.locator("#rems")).to_contain_text(field)
    form.set_viewport_size(LANDSCAPE)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    form.screenshot(path=SCREENSHOTS / "rems-form-1280x800.png")
    form.close()


def test_a_non_rems_session_offers_no_rems_form(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    closed = closed_session(
        clinic_server, 3, "PLAIN-1", protocol="ketamine-psychotherapy", drug=Drug.KETAMINE
    )
    # An esketamine dose makes any session a REMS one: this one had ketamine only.
    page = tablets("clinician").open(f"#/session/{closed.id}")
    expect(page.locator("[data-export='csv']")).to_be_visible()
    expect(page.locator("[data-export='rems']")).to_be_hidden()


def test_the_clinics_date_range_exports_download_as_csv_and_fhir(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    closed_session(clinic_server, 3, "RANGE-1")
    tablet = tablets("admin")  # issue #14: the date-range export is for admins
    page = tablet.open("#/patients")
    card = page.locator(".clinic-exports")
    expect(card).to_be_visible()
    tablet.screenshot("clinic-exports-1280x800")

    download, raw = _download(page, "[data-export='range-csv']")
    assert download.suggested_filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))
    assert rows and all(datetime.fromisoformat(r["Measured at"]).utcoffset() for r in rows)

    download, raw = _download(page, "[data-export='range-fhir']")
    bundle = json.loads(raw)
    Bundle.model_validate(bundle)
    identifiers = {
        i["value"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Patient"
        for i in e["resource"].get("identifier", [])
    }
    assert "RANGE-1" in identifiers


# -- quality: the new screens at both tablet sizes -----------------------------------------------


@pytest.mark.parametrize("viewport", SIZES)
def test_new_screens_have_44_px_targets_and_aa_contrast(
    tablets: TabletFactory, clinic_server: ClinicServer, viewport: ViewportSize
) -> None:
    closed = closed_session(clinic_server, 3, f"QUALITY-{size_of(viewport)}")
    chair = empty_chair(clinic_server, 3)
    page = tablets("clinician", viewport=viewport).open()
    small, faint = {}, {}

    for route, ready in (
        ("#/patients", ".patients-table tbody tr"),
        (f"#/patient/{closed.patient_id}", ".history-table tbody tr"),
        (f"#/admit/{chair}", "select[name='protocol'] option"),
        (f"#/session/{closed.id}", ".closed-header"),
    ):
        page.evaluate("route => { location.hash = route; }", route)
        page.locator(ready).first.wait_for(state="attached")
        small[route] = small_targets(page)
        faint[route] = low_contrast(page)

    assert not any(small.values()), small
    assert not any(faint.values()), faint
    assert page.evaluate("() => document.documentElement.scrollWidth <= innerWidth")


def test_a_returning_patient_is_admitted_from_their_page_on_the_chairs_own_cuff(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    earlier = closed_session(clinic_server, 3, "RETURNING-1")
    chair = chair_id(clinic_server, 3)
    own_cuff = next(
        c.cuff_address
        for c in clinic_server.call(clinic_server.clinic.list_chairs())
        if c.id == chair
    )
    page = tablets("clinician").open(f"#/patient/{earlier.patient_id}")

    page.get_by_role("link", name="Admit", exact=True).click()
    expect(page.locator(".chosen-patient")).to_contain_text("RETURNING-1")
    expect(page.locator(".course-note")).to_contain_text("Session 2 of the course")
    page.locator("select[name='chair_id']").select_option(str(chair))
    expect(page.locator("select[name='cuff_address']")).to_have_value(own_cuff or "")
    page.locator("select[name='protocol']").select_option("esketamine-rems")
    expect(page.locator("[data-confirm='cuff']")).to_be_hidden()
    page.get_by_role("button", name="Start session").click()

    expect(page).to_have_url(re.compile(r"#/session/\d+$"))
    started = clinic_server.call(clinic_server.clinic.get_session(int(page.url.rsplit("/", 1)[1])))
    assert (started.patient_id, started.chair_id) == (earlier.patient_id, chair)
    assert (started.course_session, started.protocol) == (2, "esketamine-rems")

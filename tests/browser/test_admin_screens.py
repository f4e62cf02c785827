"""The admin screens on a tablet (issue #14): users, chairs, cuffs with the occupancy
confirmation, the protocol's numbers; at both tablet sizes, with a screenshot of each.
A nurse or a clinician sees none of them."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Locator, Page, ViewportSize, expect

from tests.browser.clinic_actions import chair_id
from tests.browser.clinic_server import ClinicServer
from tests.browser.conftest import LANDSCAPE, PORTRAIT, SCREENSHOTS, Tablet, TabletFactory
from tests.browser.page_checks import small_targets
from vitalsd.clinic import Actor
from vitalsd.domain import Role

SIZES = [pytest.param(LANDSCAPE, id="landscape"), pytest.param(PORTRAIT, id="portrait")]
ADMIN = Actor("admin", Role.ADMIN)
NEW_PASSWORD = "a-long-enough-new-password"


def size_of(viewport: ViewportSize) -> str:
    return "landscape" if viewport == LANDSCAPE else "portrait"


def admin_tablet(tablets: TabletFactory, viewport: ViewportSize, section: str) -> Tablet:
    tablet = tablets("admin", viewport=viewport)
    page = tablet.open(f"#/admin/{section}")
    expect(page.locator(".admin-view")).to_have_attribute("data-section", section)
    return tablet


def admin_page(tablets: TabletFactory, viewport: ViewportSize, section: str) -> Page:
    return admin_tablet(tablets, viewport, section).page


def expected_conflict(tablet: Tablet) -> None:
    """The browser logs the 409 the test asked for; any other error still fails it."""
    conflict = "the server responded with a status of 409 (Conflict)"
    assert sum(conflict in e for e in tablet.errors) == 1, tablet.errors
    tablet.errors[:] = [e for e in tablet.errors if conflict not in e]


def dialog(page: Page) -> Locator:
    return page.locator("dialog.confirm-dialog")


def _shot(name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{name}.png"


@pytest.mark.parametrize("viewport", SIZES)
def test_admin_creates_a_user_sets_the_role_disables_and_resets_the_password(
    tablets: TabletFactory, clinic_server: ClinicServer, viewport: ViewportSize
) -> None:
    username = f"nurse-{size_of(viewport)}"
    page = admin_page(tablets, viewport, "users")
    form = page.locator("form[data-form='new-user']")
    form.get_by_label("User name").fill(username)
    form.get_by_label("Role").select_option("nurse")
    form.get_by_label("Password").fill("first-password-for-them")
    form.get_by_role("button", name="Create user").click()
    row = page.locator(f"tr[data-username='{username}']")
    expect(row).to_have_attribute("data-state", "active")

    row.get_by_label(f"Role of {username}").select_option("clinician")
    expect(page.locator(".admin-status")).to_have_text(f"{username} is now clinician.")
    assert clinic_server.call(clinic_server.clinic.get_user(username)).role == Role.CLINICIAN

    page.locator(f"tr[data-username='{username}']").get_by_role("button", name="Disable").click()
    expect(dialog(page)).to_be_visible()
    dialog(page).get_by_role("button", name="Disable user").click()
    row = page.locator(f"tr[data-username='{username}']")
    expect(row).to_have_attribute("data-state", "disabled")
    row.get_by_role("button", name="Enable").click()
    expect(page.locator(f"tr[data-username='{username}']")).to_have_attribute(
        "data-state", "active"
    )

    page.locator(f"tr[data-username='{username}']").get_by_role(
        "button", name="Reset password"
    ).click()
    dialog(page).get_by_label("New password").fill(NEW_PASSWORD)
    dialog(page).get_by_role("button", name="Set password").click()
    expect(page.locator(".admin-status")).to_have_text(f"Password of {username} reset.")
    signed_in = httpx.post(
        f"{clinic_server.url}api/auth/token",
        data={"username": username, "password": NEW_PASSWORD, "grant_type": "password"},
    )
    assert signed_in.status_code == 200
    assert small_targets(page) == []
    page.locator(f"tr[data-username='{username}']").get_by_role(
        "button", name="Reset password"
    ).click()
    page.screenshot(path=_shot(f"admin-users-dialog-{size_of(viewport)}"))
    dialog(page).get_by_role("button", name="Cancel").click()
    page.screenshot(path=_shot(f"admin-users-{size_of(viewport)}"))


@pytest.mark.parametrize("viewport", SIZES)
def test_admin_creates_renames_and_retires_a_chair_which_leaves_the_ward(
    tablets: TabletFactory, clinic_server: ClinicServer, viewport: ViewportSize
) -> None:
    name = f"Spare {size_of(viewport)}"
    ward = tablets("nurse", viewport=viewport).open()  # another tablet, on the ward
    tablet = admin_tablet(tablets, viewport, "chairs")
    page = tablet.page
    form = page.locator("form[data-form='new-chair']")
    form.get_by_label("Chair name").fill(name)
    form.get_by_role("button", name="Add chair").click()
    row = page.locator("tr[data-chair-id]", has_text=name)
    expect(row.locator(".chair-state")).to_have_text("Free")

    row.get_by_role("button", name="Rename").click()
    dialog(page).get_by_label("New name").fill(f"{name} (window)")
    dialog(page).get_by_role("button", name="Rename chair").click()
    row = page.locator("tr[data-chair-id]", has_text=f"{name} (window)")
    expect(row.locator(".chair-name")).to_have_text(f"{name} (window)")
    page.evaluate("() => { location.hash = '#/ward'; }")
    expect(page.locator(".tile", has_text=f"{name} (window)")).to_have_count(1)
    # The other tablet hears of the renamed chair on its stream (chair_updated).
    expect(ward.locator(".tile", has_text=f"{name} (window)")).to_have_count(1)

    page.evaluate("() => { location.hash = '#/admin/chairs'; }")
    row = page.locator("tr[data-chair-id]", has_text=f"{name} (window)")
    row.get_by_role("button", name="Retire").click()
    dialog(page).get_by_role("button", name="Retire chair").click()
    expect(row).to_have_attribute("data-retired", "true")
    expect(ward.locator(".tile", has_text=f"{name} (window)")).to_have_count(0)
    page.screenshot(path=_shot(f"admin-chairs-{size_of(viewport)}"))

    # A chair in session is not retired: the server's reason is shown.
    busy = page.locator(f"tr[data-chair-id='{chair_id(clinic_server, 2)}']")
    busy.get_by_role("button", name="Retire").click()
    dialog(page).get_by_role("button", name="Retire chair").click()
    expect(page.locator(".admin-status")).to_contain_text("open session")
    expect(busy).to_have_attribute("data-retired", "false")
    expected_conflict(tablet)

    page.evaluate("() => { location.hash = '#/ward'; }")
    expect(page.locator(".tile").first).to_be_visible()
    expect(page.locator(".tile", has_text=f"{name} (window)")).to_have_count(0)


@pytest.mark.parametrize("viewport", SIZES)
def test_admin_moves_a_cuff_off_a_chair_in_session_only_with_a_confirmation_and_reason(
    tablets: TabletFactory, clinic_server: ClinicServer, viewport: ViewportSize
) -> None:
    target = clinic_server.call(
        clinic_server.clinic.create_chair(f"Cuff bay {size_of(viewport)}", by=ADMIN)
    )
    number = 3 if viewport == LANDSCAPE else 4
    source = chair_id(clinic_server, number)
    address = clinic_server.cuffs[number - 1].config.address.upper()
    tablet = admin_tablet(tablets, viewport, "cuffs")
    page = tablet.page
    row = page.locator(f"tr[data-address='{address}']")
    expect(row.locator(".cuff-chair")).to_have_text(f"Chair {number}")
    row.get_by_label(f"New chair for cuff {address}").select_option(str(target.id))
    row.get_by_role("button", name="Assign").click()

    expect(dialog(page)).to_contain_text("has an open session")
    expected_conflict(tablet)
    page.screenshot(path=_shot(f"admin-cuffs-confirm-{size_of(viewport)}"))
    dialog(page).get_by_role("button", name="Keep it where it is").click()
    expect(dialog(page)).to_have_count(0)
    device = clinic_server.call(clinic_server.clinic.list_devices())
    assert [d.chair_id for d in device if d.address == address] == [source]

    row = page.locator(f"tr[data-address='{address}']")
    row.get_by_label(f"New chair for cuff {address}").select_option(str(target.id))
    row.get_by_role("button", name="Assign").click()
    dialog(page).get_by_label("Reason").fill("cuff strap torn; moved for the spare chair")
    dialog(page).get_by_role("button", name="Move cuff anyway").click()
    expected_conflict(tablet)  # asked again without confirm first, then with it
    expect(page.locator(f"tr[data-address='{address}'] .cuff-chair")).to_have_text(target.name)
    page.screenshot(path=_shot(f"admin-cuffs-{size_of(viewport)}"))
    audit = clinic_server.call(clinic_server.clinic.list_audit(entity="chair", entity_id=source))
    assert any(a.note == "cuff strap torn; moved for the spare chair" for a in audit)


@pytest.mark.parametrize("viewport", SIZES)
def test_admin_reads_the_protocols_numbers(
    tablets: TabletFactory, clinic_server: ClinicServer, viewport: ViewportSize
) -> None:
    page = admin_page(tablets, viewport, "protocol")
    thresholds = page.locator("[data-table='thresholds']")
    expect(thresholds.locator("tr[data-key='hold_systolic'] td")).to_have_text("160 mmHg")
    page.get_by_label("Protocol").select_option("esketamine-rems")
    doses = page.locator("[data-table='doses']")
    expect(doses).to_contain_text("28–84 mg")
    schedule = page.locator("[data-table='schedule']")
    expect(schedule.locator("tr[data-key='post_dose_opens_after_minutes'] td")).to_have_text(
        "35 min"
    )
    safety = page.locator("[data-table='safety']")
    expect(safety.locator("tr[data-key='recent_bp_minutes'] td")).to_have_text("30 min")
    assert small_targets(page) == []
    page.screenshot(path=_shot(f"admin-protocol-{size_of(viewport)}"), full_page=True)


@pytest.mark.parametrize("user", ["nurse", "clinician"])
def test_a_non_admin_sees_no_admin_screen(tablets: TabletFactory, user: str) -> None:
    page = tablets(user).open()
    expect(page.get_by_role("link", name="Admin")).to_have_count(0)
    page.evaluate("() => { location.hash = '#/admin/users'; }")
    expect(page.locator("[data-view='ward']")).to_be_visible()
    expect(page.locator(".admin-view")).to_have_count(0)

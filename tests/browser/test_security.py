"""Issue #17 in a real browser: a page on another port of the clinic's host (same site,
another origin) cannot act as the signed-in nurse, the dashboard refuses to be framed,
its stream carries no token in its URL, and passwords change from the dashboard.

Its own module, so its own clinic server: a password change ends every token of the
user, the other modules' shared sign-ins included."""

from __future__ import annotations

import http.server
import re
import sqlite3
import threading
from collections.abc import Iterator
from typing import Final

import pytest
from playwright.sync_api import expect

from tests.browser.clinic_actions import severe_alert
from tests.browser.clinic_server import PASSWORD, ClinicServer
from tests.browser.conftest import TabletFactory

NEW_PASSWORD: Final = "a fresh browser passphrase"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    page = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def foreign_site() -> Iterator[tuple[str, type[_Quiet]]]:
    """A web server on another port of the same host: the attacker's page."""
    handler = type("Page", (_Quiet,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", handler
    finally:
        server.shutdown()
        server.server_close()


def test_a_page_on_another_port_cannot_acknowledge_an_alert_as_the_nurse(
    tablets: TabletFactory,
    clinic_server: ClinicServer,
    foreign_site: tuple[str, type[_Quiet]],
) -> None:
    alert = severe_alert(clinic_server, 2)
    target = f"{clinic_server.url}api/alerts/{alert.id}/acknowledge"
    stream = clinic_server.url.replace("http://", "ws://") + "ws"
    url, page_class = foreign_site
    page_class.page = f"""<!doctype html><body>
<form id="f" method="post" action="{target}"></form>
<script>
  window.results = [];
  fetch("{target}", {{method: "POST", mode: "no-cors", credentials: "include"}})
    .then(() => results.push("fetch sent"), () => results.push("fetch failed"));
  const socket = new WebSocket("{stream}");
  socket.onmessage = (m) => results.push("stream: " + m.data.slice(0, 20));
  socket.onclose = () => results.push("stream closed");
</script></body>""".encode()
    tablet = tablets("nurse")
    tablet.allow_network_errors = True  # the refused socket is logged as a failure
    tablet.open()  # the nurse is signed in (cookie) on this tablet
    page = tablet.page
    page.goto(url)
    page.wait_for_function("window.results.length >= 2")
    results: list[str] = page.evaluate("window.results")
    assert "stream closed" in results
    assert not [entry for entry in results if entry.startswith("stream: ")]  # no snapshot
    with page.expect_navigation():
        page.locator("#f").evaluate("form => form.submit()")
    assert "cross-origin" in page.locator("body").inner_text()
    now = clinic_server.call(clinic_server.clinic.get_alert(alert.id))
    assert now.state == "active", "a forged request acknowledged the alert"
    assert now.acknowledged_by is None
    # What the attacker's page logs: our 403s, and its own missing favicon.
    refused = re.compile(r"status of (403 \(Forbidden\)|404 \(Not Found\))")
    tablet.errors[:] = [e for e in tablet.errors if not refused.search(e)]


def test_the_dashboard_will_not_load_in_a_foreign_frame(
    tablets: TabletFactory, clinic_server: ClinicServer, foreign_site: tuple[str, type[_Quiet]]
) -> None:
    url, page_class = foreign_site
    page_class.page = f'<!doctype html><iframe src="{clinic_server.url}"></iframe>'.encode()
    tablet = tablets("nurse")
    tablet.allow_network_errors = True
    tablet.errors.clear()
    page = tablet.page
    page.goto(url)
    blocked = re.compile(r"violates .*\"frame-ancestors 'none'\"")
    for _ in range(200):  # the refused load ends on Chromium's error page
        if len(page.frames) > 1 and page.frames[1].url.startswith("chrome-error://"):
            break
        page.wait_for_timeout(50)
    assert page.frames[1].url.startswith("chrome-error://"), [f.url for f in page.frames]
    assert [e for e in tablet.errors if blocked.search(e)], tablet.errors
    tablet.errors[:] = [e for e in tablet.errors if not blocked.search(e)]


def test_the_stream_signs_in_without_a_token_in_its_url(tablets: TabletFactory) -> None:
    tablet = tablets("nurse")
    sockets: list[str] = []
    tablet.page.on("websocket", lambda socket: sockets.append(socket.url))
    tablet.open()
    assert sockets
    assert not [u for u in sockets if "token=" in u or "ticket=" in u]


def test_a_clinician_changes_her_password_in_the_dashboard(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    tablet = tablets()
    page = tablet.sign_in("clinician")
    tablet.show("#/account")
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password (at least 12 characters)").fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("[data-view='login'] .form-status")).to_contain_text("Password changed")
    page.get_by_label("User name").fill("clinician")
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    tablet.wait_until_live()
    expect(page.locator(".user")).to_contain_text("clinician")


def test_an_admin_unlocks_a_locked_nurse_in_the_dashboard(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    clinic = clinic_server.clinic
    for _ in range(10):
        clinic_server.call(
            clinic.record_login("nurse", address="10.9.9.9", succeeded=False, lock_after=10)
        )
    tablet = tablets()
    page = tablet.sign_in("admin")
    tablet.show("#/account")
    row = page.locator("tr[data-username='nurse']")
    expect(row).to_contain_text("locked")
    row.get_by_role("button", name="Unlock").click()
    expect(row).to_contain_text("active")
    assert not clinic_server.call(clinic.get_account("nurse")).locked


def test_a_session_backdated_to_year_1_still_draws_at_once(
    tablets: TabletFactory, clinic_server: ClinicServer
) -> None:
    """Finding 1: stored before validation bounded it, a start in year 1 and a side effect
    in 1900 once froze this view for over 90 s (a tick every 4 hours for 2,000 years).
    The chart now spans the session's last 48 hours at most."""
    session_id = clinic_server.sessions[5]
    with sqlite3.connect(clinic_server.data_dir / "vitalsd.sqlite3", timeout=30) as database:
        database.execute(
            "UPDATE sessions SET started_at = '0001-01-02 00:00:00.000000' WHERE id = ?",
            (session_id,),
        )
        database.execute(
            "INSERT INTO side_effects (session_id, effect, severity, observed_at, recorded_by) "
            "VALUES (?, 'nausea', 1, '1900-01-01 00:00:00.000000', 'nurse')",
            (session_id,),
        )
    tablet = tablets("nurse")
    tablet.open(f"#/session/{session_id}")
    page = tablet.page
    expect(page.locator(".timeline .reading").first).to_be_visible()
    assert page.locator(".timeline .tick").count() <= 12
    assert page.locator(".timeline .side-effect").count() == 0  # 1900 is off the axis

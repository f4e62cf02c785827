"""A dropped stream in a real browser (issue #7): the page says "reconnecting", resumes
with `?since=`, and catches up without losing or doubling an alert. The line is cut by
a TCP relay between Chromium and the server (tests/browser/proxy.py), as a tablet that
loses the clinic's Wi-Fi sees it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, WebSocket, expect

from tests.browser.clinic_actions import NURSE
from tests.browser.clinic_server import ClinicServer
from tests.browser.conftest import Tablet, TabletFactory
from tests.browser.proxy import LoopbackProxy

# The page retries with back-off up to 4 s between attempts (api/static/js/stream.js).
RESUME_TIMEOUT_MS = 15_000
CATCH_UP_TIMEOUT_S = 15.0


@pytest.fixture
def proxy(clinic_server: ClinicServer) -> Iterator[LoopbackProxy]:
    relay = clinic_server.proxy()
    try:
        yield relay
    finally:
        clinic_server.call(relay.close())


def tablet_behind(tablets: TabletFactory, proxy: LoopbackProxy) -> Tablet:
    tablet = tablets(base_url=proxy.url)
    tablet.allow_network_errors = True  # failed reconnect attempts are logged by Chromium
    tablet.sign_in("nurse")
    return tablet


def page_alert_ids(page: Page) -> list[int]:
    """Every alert item in the page's lists (open and resolved), in DOM order."""
    ids: list[int] = page.locator(".alert-list .alert-item").evaluate_all(
        "items => items.map(i => Number(i.dataset.alertId))"
    )
    return ids


def test_dropped_stream_shows_reconnecting_then_resumes_with_since(
    tablets: TabletFactory, clinic_server: ClinicServer, proxy: LoopbackProxy
) -> None:
    page = tablet_behind(tablets, proxy).page
    sockets: list[WebSocket] = []
    page.on("websocket", lambda socket: sockets.append(socket))
    connection = page.locator("#connection")

    clinic_server.call(proxy.cut())
    expect(connection).to_have_attribute("data-status", "reconnecting")
    expect(connection).to_have_text("Reconnecting…")
    clinic_server.call(proxy.restore())

    expect(connection).to_have_attribute("data-status", "live", timeout=RESUME_TIMEOUT_MS)
    assert sockets, "the page opened no new stream"
    assert "/ws?since=" in sockets[-1].url, sockets[-1].url


def test_alerts_raised_during_a_cut_arrive_once_each_after_it(
    tablets: TabletFactory, clinic_server: ClinicServer, proxy: LoopbackProxy
) -> None:
    page = tablet_behind(tablets, proxy).page
    page.get_by_role("link", name="Alerts").click()
    clinic = clinic_server.clinic
    before = max((a.id for a in clinic_server.call(clinic.list_alerts(limit=1))), default=0)

    clinic_server.call(proxy.cut())
    expect(page.locator("#connection")).to_have_attribute("data-status", "reconnecting")
    # While the tablet is away: a severe and a hypotensive manual reading on two chairs.
    for session_id, (systolic, diastolic) in zip(
        clinic_server.sessions[1:3], [(212.0, 126.0), (82.0, 52.0)], strict=True
    ):
        clinic_server.call(
            clinic.record_manual_reading(
                session_id, systolic=systolic, diastolic=diastolic, pulse_rate=70.0, by=NURSE
            )
        )
    missed = [a.id for a in clinic_server.call(clinic.list_alerts(limit=50)) if a.id > before]
    assert missed, "the readings raised no alert: the test would prove nothing"
    clinic_server.call(proxy.restore())
    expect(page.locator("#connection")).to_have_attribute(
        "data-status", "live", timeout=RESUME_TIMEOUT_MS
    )

    # Not lost: each alert raised while away reached the page.
    for alert_id in missed:
        page.wait_for_function("id => window.vitalsd.state.alerts.has(id)", arg=alert_id)
    # Not doubled: once the page shows what the server holds open, no item is there twice.
    deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
    while True:
        server_open = {a.id for a in clinic_server.call(clinic.list_alerts(open_only=True))}
        shown = page_alert_ids(page)
        open_shown: list[int] = page.locator("[data-list='open'] .alert-item").evaluate_all(
            "items => items.map(i => Number(i.dataset.alertId))"
        )
        if set(open_shown) == server_open or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert set(open_shown) == server_open
    assert len(shown) == len(set(shown)), f"an alert is listed twice: {sorted(shown)}"


def test_every_stored_event_is_applied_exactly_once_across_a_cut(
    tablets: TabletFactory, clinic_server: ClinicServer, proxy: LoopbackProxy
) -> None:
    page = tablet_behind(tablets, proxy).page
    clinic_server.call(proxy.cut())
    expect(page.locator("#connection")).to_have_attribute("data-status", "reconnecting")
    clinic_server.call(
        clinic_server.clinic.record_manual_reading(
            clinic_server.sessions[3], systolic=131.0, diastolic=84.0, by=NURSE
        )
    )
    head = clinic_server.call(clinic_server.clinic.bus.last_seq())

    clinic_server.call(proxy.restore())

    page.wait_for_function("seq => window.vitalsd.state.lastSeq >= seq", arg=head)
    stream = page.evaluate(
        "() => ({...window.vitalsd.state.stream, last: window.vitalsd.state.lastSeq})"
    )
    assert stream["gaps"] == 0, stream
    assert stream["applied"] == stream["last"] - stream["firstSeq"], stream

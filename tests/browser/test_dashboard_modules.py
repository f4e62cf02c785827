"""The dashboard's pure modules (state, clock, format), run in Chromium without a server:
the page's files are served from api/static by Playwright's request routing. These pin
the rules the live tests can only catch by chance: an event applied once, a resumed
snapshot merged only when the replay has caught up, the order alerts are shown in."""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
from playwright.sync_api import Browser, Page, Route

STATIC: Final = Path(__file__).resolve().parents[2] / "api" / "static"
ORIGIN: Final = "http://dashboard.test"


def serve_static(route: Route) -> None:
    path = route.request.url.removeprefix(ORIGIN).split("?")[0]
    file = (STATIC / path.lstrip("/")).resolve()
    if path == "/" or not file.is_relative_to(STATIC) or not file.is_file():
        route.fulfill(status=200, content_type="text/html", body="<!doctype html><title>t</title>")
        return
    kind = "text/javascript" if file.suffix == ".js" else mimetypes.guess_type(file.name)[0]
    route.fulfill(status=200, content_type=kind or "text/plain", body=file.read_bytes())


@pytest.fixture(scope="module")
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    context.route(f"{ORIGIN}/**", serve_static)
    opened = context.new_page()
    opened.goto(f"{ORIGIN}/")
    try:
        yield opened
    finally:
        context.close()


def run(page: Page, body: str, arg: Any = None) -> Any:
    """Run `body` (an async function body with the modules in scope) in the page."""
    return page.evaluate(
        f"""async (arg) => {{
            const {{ ClinicState }} = await import("/js/state.js");
            const {{ ServerClock }} = await import("/js/clock.js");
            const format = await import("/js/format.js");
            {body}
        }}""",
        arg,
    )


SNAPSHOT: Final = {
    "seq": 10,
    "chairs": [{"id": 1, "name": "Chair 1", "cuff_address": None, "session_id": 7}],
    "sessions": [],
    "latest_readings": [],
    "active_alerts": [],
    "due_checks": [],
    "devices": [],
}


def alert(id: int, priority: str, kind: str, state: str = "active") -> dict[str, Any]:
    return {
        "id": id,
        "priority": priority,
        "kind": kind,
        "state": state,
        "message": kind,
        "session_id": 7,
        "chair_id": 1,
        "raised_at": f"2026-01-05T09:{id:02d}:00+00:00",
    }


def test_an_event_delivered_twice_is_applied_once(page: Page) -> None:
    applied = run(
        page,
        """
        const state = new ClinicState();
        state.apply({type: "snapshot", seq: null, at: "", data: arg.snapshot});
        const event = {seq: 11, type: "alert", at: "", data: arg.alert};
        const first = state.apply(event);
        const again = state.apply(event);
        return [first.newAlerts.length, again.newAlerts.length, state.stream.repeats,
                state.openAlerts().length];
        """,
        {"snapshot": SNAPSHOT, "alert": alert(1, "high", "severe_hypertension")},
    )

    assert applied == [1, 0, 1, 1]


def test_a_gap_in_sequence_numbers_is_counted(page: Page) -> None:
    gaps = run(
        page,
        """
        const state = new ClinicState();
        state.apply({type: "snapshot", seq: null, at: "", data: arg});
        state.apply({seq: 11, type: "device_status", at: "", data: {address: "A", chair_id: 1}});
        state.apply({seq: 13, type: "device_status", at: "", data: {address: "A", chair_id: 1}});
        return state.stream.gaps;
        """,
        SNAPSHOT,
    )

    assert gaps == 1


def test_resumed_snapshot_is_merged_only_after_the_replay_reaches_it(page: Page) -> None:
    # The tablet applied up to seq 10; it reconnects with since=10 and gets a snapshot at
    # seq 12 where alert 1 is acknowledged, then the replay of 11 (alert raised) and 12
    # (alert acknowledged). Merging the snapshot first would let event 11 undo it.
    seen = run(
        page,
        """
        const state = new ClinicState();
        state.apply({type: "snapshot", seq: null, at: "", data: arg.snapshot});
        const resumed = {...arg.snapshot, seq: 12, active_alerts: [arg.acknowledged]};
        state.apply({type: "snapshot", seq: 10, at: "", data: resumed}, {resumed: true});
        const afterSnapshot = state.alerts.size;
        state.apply({seq: 11, type: "alert", at: "", data: arg.raised});
        const midway = state.alerts.get(1).state;
        state.apply({seq: 12, type: "alert_updated", at: "", data: arg.acknowledged});
        return [afterSnapshot, midway, state.alerts.get(1).state, state.pendingSnapshot];
        """,
        {
            "snapshot": SNAPSHOT,
            "raised": alert(1, "high", "severe_hypertension"),
            "acknowledged": alert(1, "high", "severe_hypertension", "acknowledged"),
        },
    )

    assert seen == [0, "active", "acknowledged", None]


def test_alerts_show_unacknowledged_then_priority_then_danger_first(page: Page) -> None:
    order = run(
        page,
        """
        const state = new ClinicState();
        state.apply({type: "snapshot", seq: null, at: "", data: {...arg.snapshot,
                     active_alerts: arg.alerts}});
        return state.openAlerts().map((a) => a.id);
        """,
        {
            "snapshot": SNAPSHOT,
            "alerts": [
                alert(1, "low", "elevated_baseline"),
                alert(2, "high", "dosing_hold"),
                alert(3, "high", "severe_hypertension"),
                alert(4, "high", "severe_hypertension", "acknowledged"),
                alert(5, "medium", "hypotension"),
            ],
        },
    )

    assert order == [3, 2, 5, 1, 4]


def test_server_clock_follows_a_clinic_clock_running_sixty_times_faster(page: Page) -> None:
    shown = run(
        page,
        """
        let local = 0;
        const clock = new ServerClock(() => local);
        const start = Date.parse("2026-01-05T09:00:00Z");
        clock.observe(new Date(start).toISOString());
        local = 5000;  // 5 s later the server stamps an event 5 min later
        clock.observe(new Date(start + 300_000).toISOString());
        local = 6000;
        return (clock.now() - start) / 1000;
        """,
    )

    assert shown == pytest.approx(360.0)


def test_tiles_show_initials_not_the_full_name(page: Page) -> None:
    shown = run(
        page,
        'return [format.initials("Avery Brooks"), format.initials("Jean-Luc Picard"), '
        'format.initials("Cher")];',
    )

    assert shown == ["A.B.", "J.P.", "C."]


def test_ages_read_as_a_nurse_says_them(page: Page) -> None:
    shown = run(
        page,
        "return [30e3, 4 * 60e3, 65 * 60e3, 120 * 60e3].map((ms) => format.age(ms));",
    )

    assert shown == ["just now", "4 min ago", "1 h 5 min ago", "2 h ago"]

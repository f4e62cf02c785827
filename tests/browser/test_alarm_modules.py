"""Issue #14's pure dashboard rules, run in Chromium without a server (as
test_dashboard_modules.py does): when a tone is due, the acuity order, the figures an
alert shows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.test_dashboard_modules import ORIGIN, serve_static


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
    return page.evaluate(
        f"""async (arg) => {{
            const control = await import("/js/alarm-control.js");
            const layout = await import("/js/views/ward-layout.js");
            const figures = await import("/js/views/alert-figures.js");
            const {{ ClinicState }} = await import("/js/state.js");
            {body}
        }}""",
        arg,
    )


def alert(id_: int, priority: str, state: str = "active", **extra: Any) -> dict[str, Any]:
    return {"id": id_, "priority": priority, "state": state, **extra}


@pytest.mark.parametrize(
    ("alerts", "heard", "last", "now", "paused_until", "due"),
    [
        ([alert(1, "high")], [], None, 0, None, "high"),  # new: at once
        ([alert(1, "high")], [1], {"priority": "high", "at": 0}, 4_999, None, None),
        ([alert(1, "high")], [1], {"priority": "high", "at": 0}, 5_000, None, "high"),
        ([alert(1, "medium")], [1], {"priority": "medium", "at": 0}, 19_999, None, None),
        ([alert(1, "medium")], [1], {"priority": "medium", "at": 0}, 20_000, None, "medium"),
        # A high alarm arriving over a medium cadence sounds at once, as high.
        (
            [alert(1, "medium"), alert(2, "high")],
            [1, 2],
            {"priority": "medium", "at": 0},
            1,
            None,
            "high",
        ),
        ([alert(1, "high", "acknowledged")], [], None, 0, None, None),
        ([alert(1, "high", "snoozed")], [], None, 0, None, None),
        ([alert(1, "low")], [], None, 0, None, None),  # low: shown, not sounded
        ([alert(1, "high")], [], None, 1_000, 120_000, None),  # audio paused
        ([alert(1, "high")], [1], {"priority": "high", "at": 0}, 120_000, 120_000, "high"),
    ],
)
def test_which_tone_is_due(
    page: Page,
    alerts: list[dict[str, Any]],
    heard: list[int],
    last: dict[str, Any] | None,
    now: int,
    paused_until: int | None,
    due: str | None,
) -> None:
    found = run(
        page,
        "return control.toneDue({alerts: arg.alerts, heard: new Set(arg.heard), last: arg.last,"
        " now: arg.now, pausedUntil: arg.paused});",
        {"alerts": alerts, "heard": heard, "last": last, "now": now, "paused": paused_until},
    )
    assert found == due


def test_acuity_order_highest_active_priority_then_the_check_soonest_due(page: Page) -> None:
    order = run(
        page,
        """
        const state = new ClinicState();
        const chairs = [1, 2, 3, 4, 5].map(
          (id) => ({ id, name: `Chair ${id}`, session_id: id < 5 ? id : null }),
        );
        state.chairs = new Map(chairs.map((c) => [c.id, c]));
        const check = (state, start, end) => (
          { id: 1, state, window_start: start, window_end: end }
        );
        const sessions = [
          { id: 1, chair_id: 1, next_check: check("pending", "2026-01-01T10:30:00Z", null) },
          { id: 2, chair_id: 2, next_check: check("pending", "2026-01-01T10:10:00Z", null) },
          { id: 3, chair_id: 3, next_check: null },
          { id: 4, chair_id: 4, next_check: null },
        ];
        for (const s of sessions) state.sessions.set(s.id, s);
        const put = (id, session_id, priority, phase) => state.alerts.set(
          id, { id, session_id, priority, state: phase, kind: "hypotension" },
        );
        put(10, 3, "medium", "active");
        put(11, 4, "high", "acknowledged");
        return layout.byAcuity(chairs, state, Date.parse("2026-01-01T10:00:00Z")).map((c) => c.id);
        """,
    )
    # Active medium first; an acknowledged high counts as nothing active; then the
    # check soonest due (chair 2 before 1); chair 4 (nothing due) after; empty last.
    assert order == [3, 2, 1, 4, 5]


@pytest.mark.parametrize(
    ("message", "latest", "figures"),
    [
        (
            "Severe hypertension 196/118 (>= 180/110)",
            "Severe hypertension 200/120 (>= 180/110)",
            {"raised": "196/118", "latest": "200/120", "limit": "≥ 180/110"},
        ),
        (
            "Hypotension 84/52 (< 90/60)",
            None,
            {"raised": "84/52", "latest": "84/52", "limit": "< 90/60"},
        ),
        (
            "Pulse 132/min outside 40-120",
            None,
            {"raised": "pulse 132/min", "latest": "pulse 132/min", "limit": "pulse 40-120/min"},
        ),
        ("Check overdue: no reading", None, {"raised": None, "latest": None, "limit": None}),
    ],
)
def test_an_alert_shows_the_value_that_raised_it_the_latest_and_the_limit(
    page: Page, message: str, latest: str | None, figures: dict[str, str | None]
) -> None:
    found = run(
        page,
        "return figures.alertFigures({message: arg.message, latest_message: arg.latest});",
        {"message": message, "latest": latest},
    )
    assert found == figures

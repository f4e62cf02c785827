"""The session chart's labels do not cover each other (issue #14), measured by Chromium's
own layout of the SVG: doses given minutes apart, side effects logged together, and
threshold lines close to each other."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.test_dashboard_modules import ORIGIN, serve_static

START = "2026-01-05T09:00:00Z"


@pytest.fixture(scope="module")
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.route(f"{ORIGIN}/**", serve_static)
    opened = context.new_page()
    opened.goto(f"{ORIGIN}/")
    opened.evaluate(
        """() => { const link = document.createElement("link");
        link.rel = "stylesheet"; link.href = "/css/dashboard.css";
        document.head.append(link);
        return new Promise((done) => { link.onload = done; }); }"""
    )
    try:
        yield opened
    finally:
        context.close()


def overlapping_labels(page: Page, chart: dict[str, Any]) -> list[list[str]]:
    """Pairs of chart labels whose boxes intersect, as Chromium laid them out."""
    return list(
        page.evaluate(
            """async (chart) => {
                const { timeline } = await import("/js/chart.js");
                const t0 = Date.parse(chart.start);
                const at = (minutes) => new Date(t0 + minutes * 60000).toISOString();
                const svg = timeline({
                    width: chart.width,
                    height: 470,
                    session: { started_at: chart.start, closed_at: null, baseline: null },
                    readings: [],
                    checks: [],
                    doses: chart.doses.map((d, i) => ({ id: i + 1, given_at: at(d.minute),
                        drug: d.drug, amount_mg: d.amount_mg, route: d.route, increase: false })),
                    sideEffects: chart.effects.map((e, i) => ({ id: i + 1,
                        observed_at: at(e.minute), effect: e.effect, severity: e.severity })),
                    thresholds: chart.thresholds ?? undefined,
                    now: Date.parse(chart.start) + 60 * 60000,
                });
                const host = document.createElement("div");
                host.className = "chart";
                host.append(svg);
                document.body.replaceChildren(host);
                const labels = [...svg.querySelectorAll(
                    ".dose-label, .effect-label, .threshold-label, .baseline-label")];
                const boxes = labels.map((t) => [t.textContent, t.getBoundingClientRect()]);
                const pairs = [];
                for (let i = 0; i < boxes.length; i++) {
                    for (let j = i + 1; j < boxes.length; j++) {
                        const [a, p] = boxes[i];
                        const [b, q] = boxes[j];
                        const across = p.left < q.right && q.left < p.right;
                        if (across && p.top < q.bottom && q.top < p.bottom) {
                            pairs.push([a, b]);
                        }
                    }
                }
                return pairs;
            }""",
            chart,
        )
    )


@pytest.mark.parametrize("width", [720, 1180])
def test_labels_of_doses_and_side_effects_close_together_do_not_overlap(
    page: Page, width: int
) -> None:
    chart = {
        "start": START,
        "width": width,
        "doses": [
            {"minute": m, "drug": "esketamine", "amount_mg": 28, "route": "intranasal"}
            for m in (5, 7, 9, 11)
        ],
        "effects": [
            {"minute": m, "effect": e, "severity": 2}
            for m, e in [
                (12, "mood_elevation"),
                (13, "dissociation"),
                (14, "nausea"),
                (15, "anxiety"),
                (16, "dizziness"),
            ]
        ],
        "thresholds": None,
    }
    assert overlapping_labels(page, chart) == []


def test_threshold_labels_of_close_lines_do_not_overlap(page: Page) -> None:
    thresholds = {
        "severe_systolic": 180,
        "severe_diastolic": 110,
        "elevated_systolic": 104,
        "elevated_diastolic": 100,
        "hypotension_systolic": 96,
    }
    chart = {"start": START, "width": 900, "doses": [], "effects": [], "thresholds": thresholds}
    assert overlapping_labels(page, chart) == []
